"""The metadata file saved beside every model the project trains."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from base.integrity import verify_file

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"


@dataclass
class ModelMetadata:
    """What a model directory says about its model.

    ``input_size`` is (height, width); the model takes RGB floats in 0..255 and does its own
    normalization. ``flip_average``: an image's embedding is the sum of the model's outputs for
    the image and its mirror image (the usual re-ID test-time flip). ``center_crops``: the
    fractions of each image's height and width kept around its centre before resizing, one
    view each (1 keeps it whole); the embedding sums the views' outputs, which stand for the
    views the training zoom showed. ``threshold`` is the
    calibrated cosine-similarity match threshold. ``projection`` describes a linear map
    appended to the trained network (``reid fit-projection``), empty when there is none.
    ``runtime`` says how an OpenVINO/ONNX network takes its input (``RuntimeInput``); empty for
    Keras models. ``sha256`` maps each model file the directory holds to its SHA-256, checked
    before the file loads.
    """

    model_id: str
    input_size: tuple[int, int]
    embedding_dim: int
    preprocessing: str = "RGB, resized to input_size, float 0..255; normalization inside the model"
    backbone: str = "MobileNetV2 (ImageNet-1k, torchvision weights ported to Keras)"
    training_data: str = ""
    license: str = ""
    recipe: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    flip_average: bool = False
    center_crops: tuple[float, ...] = (1.0,)
    projection: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    threshold_target_fmr: float | None = None

    def verified(self, model_dir: Path, name: str) -> Path:
        """Return the path of model file ``name`` in ``model_dir`` after checking its recorded SHA-256.

        A directory from before digests were recorded has none to check; that is logged.

        Raises:
            IntegrityError: the file's digest differs from the recorded one.
        """
        path = Path(model_dir) / name
        expected = self.sha256.get(name)
        if expected is None:
            log.warning("%s has no recorded SHA-256: loading it unchecked", path)
        else:
            verify_file(path, expected)
        return path

    def save(self, model_dir: Path) -> Path:
        """Write ``metadata.json`` into ``model_dir`` and return its path."""
        path = Path(model_dir) / METADATA_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> ModelMetadata:
        """Read ``metadata.json`` from ``model_dir``.

        A file from before multi-view crops names one ``center_crop``.

        Raises:
            FileNotFoundError: the directory has no metadata file.
        """
        data = json.loads((Path(model_dir) / METADATA_FILE).read_text())
        data["input_size"] = tuple(data["input_size"])
        if "center_crop" in data:
            data["center_crops"] = [data.pop("center_crop")]
        data["center_crops"] = tuple(data.get("center_crops", cls.center_crops))
        return cls(**data)
