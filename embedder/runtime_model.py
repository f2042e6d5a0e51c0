"""Embedders run by OpenVINO on the CPU: an IR (``.xml`` + ``.bin``) or an ONNX network.

A runtime model directory holds the network file and a ``metadata.json`` whose ``runtime``
entry says how the network wants its input (``RuntimeInput``). Third-party networks that ship
without our metadata are recognised by their file name (``embedder.third_party``), so a folder
as Open Model Zoo or torchreid publish it can be used as it is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage
from base.inference import check_precision, cpu_precision
from embedder.base import Embedder
from embedder.metadata import METADATA_FILE, ModelMetadata
from embedder.preprocess import resized_batch

log = logging.getLogger(__name__)

NETWORK_SUFFIXES = (".xml", ".onnx")
IR_FILE = "model.xml"
IR_WEIGHTS_FILE = "model.bin"
REQUEST_IMAGES = 8  # images per inference request: small enough to stay in cache, to share out among streams


@dataclass(frozen=True)
class RuntimeInput:
    """How a network takes its input: ``channels`` order, ``layout``, and the affine map
    ``(pixel * scale - mean) / std`` per channel (in ``channels`` order) from 0..255 pixels."""

    channels: str = "RGB"
    layout: str = "NHWC"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"runtime channels must be RGB or BGR, got {self.channels!r}")
        if self.layout not in ("NHWC", "NCHW"):
            raise ValueError(f"runtime layout must be NHWC or NCHW, got {self.layout!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeInput:
        """Read the ``runtime`` entry of a metadata file."""
        values = dict(data)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(value) for value in values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-ready values."""
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def built_into(self, model: Any) -> Any:
        """Return the OpenVINO ``model`` taking (N, H, W, 3) uint8 BGR batches, mapped to its input in-graph."""
        import openvino as ov

        processor = ov.preprocess.PrePostProcessor(model)
        processor.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        processor.input().model().set_layout(ov.Layout(self.layout))
        steps = processor.input().preprocess().convert_element_type(ov.Type.f32)
        if self.channels == "RGB":
            steps.reverse_channels()
        # (pixel * scale - mean) / std == (pixel - mean / scale) / (std / scale)
        if any(self.mean):
            steps.mean([value / self.scale for value in self.mean])
        if self.scale != 1.0 or self.std != (1.0, 1.0, 1.0):
            steps.scale([value / self.scale for value in self.std])
        return processor.build()


def network_file(path: Path) -> Path:
    """Return the network a runtime model path names: the file itself, or the one in a directory.

    Raises:
        FileNotFoundError: no ``.xml``/``.onnx`` network there, or several in one directory.
    """
    path = Path(path)
    if path.is_file() and path.suffix in NETWORK_SUFFIXES:
        return path
    found = sorted(p for p in path.iterdir() if p.suffix in NETWORK_SUFFIXES) if path.is_dir() else []
    if len(found) != 1:
        raise FileNotFoundError(
            f"{path} must be an OpenVINO IR (.xml) or ONNX (.onnx) file, or a directory holding "
            f"exactly one, found {[p.name for p in found]}")
    return found[0]


def file_digest(path: Path, length: int = 12) -> str:
    """Return the first ``length`` hex digits of the SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


class RuntimeEmbedder(Embedder):
    """Embeds person crops with an OpenVINO-compiled network, ``batch_size`` crops per call.

    Each image's embedding sums the outputs for its ``metadata.center_crops`` views (and their
    mirror images with ``flip_average``), as ``KerasEmbedder`` does. The views of a call go to
    the network as one uint8 batch (the pixel mapping runs in the compiled graph), split over
    the runtime's parallel streams; calls from several threads take turns.
    """

    metadata: ModelMetadata

    def __init__(self, network: Path, metadata: ModelMetadata, runtime: RuntimeInput,
                 batch_size: int = 32, threads: int | None = None, precision: str = "auto") -> None:
        """Describe the network; it is read and compiled on first use.

        Args:
            precision: ``f32``, ``bf16``, or ``auto``: bf16 where the CPU computes it natively.

        Raises:
            ValueError: ``batch_size`` is not positive or ``precision`` is none of those.
        """
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.network = Path(network)
        self.metadata = metadata
        self.runtime = runtime
        self.model_id = metadata.model_id
        self.dim = metadata.embedding_dim
        height, width = metadata.input_size
        self.input_size = (height, width)
        self.batch_size = batch_size
        self.threads = threads
        self.precision = check_precision(precision)
        self._requests: Any = None  # an openvino.AsyncInferQueue, one request per stream
        self._outputs: list[NDArray[np.float32]] = []  # the current call's, by part
        self._infer_lock = threading.Lock()

    def limit_threads(self, threads: int) -> None:
        """Have OpenVINO compute with ``threads`` CPU threads (read at load)."""
        self.threads = threads

    def _load(self) -> None:
        """Check the recorded digests, read the network, give it uint8 input and a dynamic batch size,
        and compile it for throughput: one inference request per stream.

        Raises:
            IntegrityError: a network file differs from the one its metadata records.
        """
        import openvino as ov

        for name in self.metadata.sha256:
            if name in (self.network.name, self.network.with_suffix(".bin").name):
                self.metadata.verified(self.network.parent, name)
        core = ov.Core()
        model = core.read_model(self.network)
        shape = model.input(0).get_partial_shape()
        shape[0] = -1
        model.reshape({model.input(0): shape})
        precision = cpu_precision(core, self.precision)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": precision}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        compiled = core.compile_model(self.runtime.built_into(model), "CPU", config)
        self._requests = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._requests.set_callback(self._keep_output)
        log.info("compiled %s (%s) with OpenVINO: %s, %d streams", self.model_id, self.network,
                 precision, self.streams)

    @property
    def streams(self) -> int:
        """Return how many inference requests run in parallel (known once loaded, else 0)."""
        return 0 if self._requests is None else len(self._requests)

    def _embed(self, images: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return the raw (N, dim) embeddings of ``images``, ``batch_size`` at a time."""
        return np.concatenate([self._embed_views(images[start:start + self.batch_size])
                               for start in range(0, len(images), self.batch_size)])

    def _embed_views(self, batch: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return the sum of the network's outputs over each view of ``batch``."""
        views = [resized_batch(batch, self.input_size, crop) for crop in self.metadata.center_crops]
        if self.metadata.flip_average:
            views += [pixels[:, :, ::-1] for pixels in views]
        outputs = self._infer(np.concatenate(views))  # one call for all views
        return outputs.reshape(len(views), len(batch), -1).sum(axis=0)

    def _infer(self, pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Run the network on an (N, H, W, 3) uint8 BGR batch, in requests of at most ``REQUEST_IMAGES``
        images (at least one per stream) handed to whichever stream is free; return the (N, dim) output."""
        parts = np.array_split(pixels, max(-(-len(pixels) // REQUEST_IMAGES), min(self.streams, len(pixels))))
        with self._infer_lock:
            self._outputs = [np.empty(0, np.float32)] * len(parts)
            for i, part in enumerate(parts):
                self._requests.start_async({0: part}, i)
            self._requests.wait_all()
            return np.concatenate(self._outputs).reshape(len(pixels), -1)

    def _keep_output(self, request: Any, part: int) -> None:
        """Keep a copy of a finished request's output as part ``part`` of the call's."""
        self._outputs[part] = np.array(request.get_output_tensor(0).data, dtype=np.float32)


def load_runtime_embedder(path: Path, batch_size: int = 32, threads: int | None = None,
                          precision: str = "auto") -> RuntimeEmbedder:
    """Build the embedder for a runtime model: a directory with metadata, or a known third-party network.

    Raises:
        FileNotFoundError: no single network file at ``path``.
        KeyError: no ``metadata.json`` beside the network and its file name is not a known network.
    """
    from embedder.third_party import third_party_metadata

    network = network_file(path)
    metadata_dir = network.parent
    if (metadata_dir / METADATA_FILE).is_file():
        metadata = ModelMetadata.load(metadata_dir)
        runtime = RuntimeInput.from_dict(metadata.runtime)
    else:
        metadata, runtime = third_party_metadata(network, file_digest(network))
    return RuntimeEmbedder(network, metadata, runtime, batch_size=batch_size, threads=threads,
                           precision=precision)
