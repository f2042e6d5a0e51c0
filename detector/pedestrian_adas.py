"""Intel's pedestrian-detection-adas-0002 (an SSD on MobileNet, OpenVINO IR) as a person detector.

The network takes a 1x3x384x672 BGR 0..255 batch (NCHW, no normalisation) and ends in an SSD
DetectionOutput layer (NMS IoU 0.45) that writes up to 200 rows
``[image_id, label, score, x_min, y_min, x_max, y_max]`` per image, coordinates in 0..1;
``image_id`` -1 ends the list. The files are Open Model Zoo's (Apache-2.0) and are not part of
this project: they are read from ``model_path``, by default the shared models folder beside
the project (``../shared/models/detectors/intel-pedestrian-detection-adas-0002``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from base.boxes import suppress_overlaps
from base.images import BGRImage
from base.inference import check_precision, cpu_precision
from detector.base import Detection, Detector
from detector.tiling import Tiling

log = logging.getLogger(__name__)

ADAS_NAME = "pedestrian-detection-adas-0002"
# The shared models folder beside the project (``<project>/../shared/models``); a path, not a probe.
DEFAULT_ADAS_PATH = (Path(__file__).resolve().parents[2] / "shared" / "models" / "detectors"
                     / f"intel-{ADAS_NAME}")
ADAS_INPUT_SIZE = (672, 384)  # width, height
PERSON_LABEL = 1
# Its scores run lower than SSDLite's: on PETS09 0.3 keeps 83% of the persons at 88% precision.
ADAS_MIN_SCORE = 0.3
PAD_COLOUR = (114, 114, 114)  # BGR grey around padded crops


def adas_network_file(path: Path) -> Path:
    """Return the IR ``.xml`` a path names: the file itself, or the one in a directory.

    Raises:
        FileNotFoundError: no such file, or a directory without exactly one ``.xml`` (the
            message names the path and where the network is published).
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".xml":
        return path
    found = sorted(path.glob("*.xml")) if path.is_dir() else []
    if len(found) != 1:
        raise FileNotFoundError(
            f"the {ADAS_NAME} detector needs its OpenVINO IR (.xml and .bin) at {path}, found "
            f"{[p.name for p in found] or 'nothing'}; it is Intel's Open Model Zoo network "
            f"(Apache-2.0): put the folder there or name it with REID_DETECTOR_MODEL")
    return found[0]


class PedestrianAdasDetector(Detector):
    """Person detector: Intel's pedestrian-detection-adas-0002, run by OpenVINO on the CPU.

    Images are resized to the network's input and sent ``batch_size`` at a time. Frames and
    tiles are stretched to it, as the network was trained; an image whose aspect ratio is more
    than ``max_stretch`` times off the input's (a person crop, taller than wide) is padded
    with grey to the input's aspect ratio first, with ``crop_margin`` of its height above and
    below: stretched, or filled by one person, such an image gets several boxes per person
    (on CUHK03 crops 11 of 40 got exactly one box as they were, 39 of 40 padded). The
    network's own NMS (IoU 0.45) lets through boxes around part of a person lying inside the
    whole-body box; a second suppression by IoU and containment removes them, best score first.

    Args:
        model_path: the ``.xml`` file or a folder holding exactly one.
        min_width, min_height: drop boxes narrower or shorter than this many pixels.
        nms_iou: drop a box whose IoU with a better kept box exceeds this; 1.0 disables.
        max_containment: drop a box when more than this share of the smaller of it and a
            better kept box lies inside the other; 1.0 disables.
        batch_size: images per inference request.
        threads: CPU threads for OpenVINO (None: its own choice).
        max_stretch: pad images whose aspect ratio is more than this times off the input's, >= 1.
        crop_margin: share of a padded image's height added above and below it, >= 0.
        tiling: when and how large frames are tiled (``Detector``).
        precision: ``f32``, ``bf16``, or ``auto``: bf16 where the CPU computes it natively.

    Raises:
        ValueError: a size or batch size below 1, a threshold outside [0, 1], ``max_stretch``
            below 1, a negative ``crop_margin`` or an unknown ``precision``.
    """

    model_id = ADAS_NAME
    input_size = ADAS_INPUT_SIZE
    min_score = ADAS_MIN_SCORE

    def __init__(self, model_path: str | Path | None = None, *, min_width: int = 1,
                 min_height: int = 1, nms_iou: float = 0.5, max_containment: float = 0.9,
                 batch_size: int = 4, threads: int | None = None, max_stretch: float = 1.5,
                 crop_margin: float = 0.15, tiling: Tiling | None = None, precision: str = "auto") -> None:
        super().__init__(tiling)
        if min_width < 1 or min_height < 1:
            raise ValueError(
                f"min_width and min_height must be >= 1, got {min_width}, {min_height}")
        if not (0.0 <= nms_iou <= 1.0 and 0.0 <= max_containment <= 1.0):
            raise ValueError(f"nms_iou and max_containment must be in [0, 1], "
                             f"got {nms_iou}, {max_containment}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_stretch < 1.0 or crop_margin < 0.0:
            raise ValueError(f"max_stretch must be >= 1 and crop_margin >= 0, "
                             f"got {max_stretch}, {crop_margin}")
        self.model_path = Path(model_path) if model_path is not None else DEFAULT_ADAS_PATH
        self.min_width = min_width
        self.min_height = min_height
        self.nms_iou = nms_iou
        self.max_containment = max_containment
        self.batch_size = batch_size
        self.threads = threads
        self.max_stretch = max_stretch
        self.crop_margin = crop_margin
        self.precision = check_precision(precision)
        self._compiled: Any = None
        self._infer_lock = threading.Lock()  # the compiled model's own request serves one call at a time

    def limit_threads(self, threads: int) -> None:
        """Have OpenVINO compute with ``threads`` CPU threads (read at load)."""
        self.threads = threads

    def _load(self) -> None:
        """Read the IR, give it a dynamic batch, compile it for the CPU in ``precision``."""
        import openvino as ov

        network = adas_network_file(self.model_path)
        core = ov.Core()
        model = core.read_model(network)
        shape = model.input(0).get_partial_shape()
        if (shape[3].get_length(), shape[2].get_length()) != self.input_size:
            raise ValueError(f"{network} takes {shape} images, not 1x3x{self.input_size[1]}x"
                             f"{self.input_size[0]}: it is not {ADAS_NAME}")
        shape[0] = -1
        model.reshape({model.input(0): shape})
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                  "INFERENCE_PRECISION_HINT": cpu_precision(core, self.precision)}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        self._compiled = core.compile_model(model, "CPU", config)
        log.info("compiled %s (%s) with OpenVINO: %s", self.model_id, network, config["INFERENCE_PRECISION_HINT"])

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Run the network on batches of resized images and map its rows back to pixels."""
        assert self._compiled is not None
        results: list[list[Detection]] = []
        width, height = self.input_size
        for start in range(0, len(images), self.batch_size):
            chunk = [self._pad(image) for image in images[start:start + self.batch_size]]
            batch = np.stack([cv2.resize(padded, (width, height), interpolation=cv2.INTER_LINEAR)
                              for padded, _ in chunk]).transpose(0, 3, 1, 2).astype(np.float32)
            with self._infer_lock:
                rows = np.array(self._compiled(batch)[self._compiled.output(0)]).reshape(-1, 7)
            rows = rows[: _valid_rows(rows)]
            for i, ((padded, offset), image) in enumerate(zip(chunk, images[start:start + self.batch_size])):
                mine = rows[(rows[:, 0] == i) & (rows[:, 1] == PERSON_LABEL) & (rows[:, 2] >= min_score)]
                results.append(self._to_detections(mine, padded.shape[1], padded.shape[0], offset,
                                                   image.shape[1], image.shape[0]))
        return results

    def _pad(self, image: BGRImage) -> tuple[BGRImage, tuple[int, int]]:
        """Return the image padded to the input's aspect ratio if off it, and its (x, y) offset in it."""
        height, width = image.shape[:2]
        aspect = self.input_size[0] / self.input_size[1]
        stretch = aspect * height / width
        if max(stretch, 1.0 / stretch) <= self.max_stretch:
            return image, (0, 0)
        if stretch > 1.0:  # taller than the input; a portrait (a person crop) gets room around
            top = round(self.crop_margin * height) if height > width else 0
            left = max(0, round((height + 2 * top) * aspect) - width) // 2
        else:
            left = 0
            top = max(0, round(width / aspect) - height) // 2
        right = max(0, round((height + 2 * top) * aspect) - width - left)
        bottom = max(0, round((width + left + right) / aspect) - height - top)
        padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                    value=PAD_COLOUR)
        return np.asarray(padded, dtype=np.uint8), (int(left), int(top))

    def _to_detections(self, rows: NDArray[np.float32], width: int, height: int,
                       offset: tuple[int, int], image_width: int, image_height: int) -> list[Detection]:
        """Turn ``[id, label, score, x0, y0, x1, y1]`` rows in a ``width`` x ``height`` (padded) image
        into pixel boxes of the image at ``offset`` in it: shifted, clipped, deduplicated."""
        scale = np.array([width, height, width, height], dtype=np.float64)
        shift = np.array([offset[0], offset[1], offset[0], offset[1]], dtype=np.float64)
        limit = np.array([image_width, image_height, image_width, image_height], dtype=np.float64)
        corners = np.rint(np.clip(np.clip(rows[:, 3:7].astype(np.float64), 0.0, 1.0) * scale - shift,
                                  0.0, limit)).astype(np.int64)
        scores = rows[:, 2].astype(np.float64)
        boxes = np.stack([corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0],
                          corners[:, 3] - corners[:, 1]], axis=1)
        large = (boxes[:, 2] >= self.min_width) & (boxes[:, 3] >= self.min_height)
        boxes, scores = boxes[large], scores[large]
        found = []
        for i in suppress_overlaps(boxes, scores, self.nms_iou, self.max_containment):
            x, y, w, h = (int(v) for v in boxes[i])
            found.append(Detection(x, y, w, h, float(scores[i])))
        return found


def _valid_rows(rows: NDArray[np.float32]) -> int:
    """Return how many rows precede the first ``image_id`` of -1 (all when there is none)."""
    ends = np.flatnonzero(rows[:, 0] < 0)
    return int(ends[0]) if len(ends) else len(rows)
