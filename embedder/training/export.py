"""Saving an inference model in the project's model-directory layout."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from base.integrity import IntegrityError, file_sha256
from embedder.metadata import ModelMetadata
from embedder.reid_model import MODEL_FILE
from embedder.runtime_model import IR_FILE, IR_WEIGHTS_FILE, RuntimeInput

log = logging.getLogger(__name__)

JSON_FILE = "model.json"
H5_FILE = "model.h5"
VERIFY_IMAGES = 8
VERIFY_MAX_ERROR = 1e-3


def weights_digest(model: keras.Model, length: int = 12) -> str:
    """Return the first ``length`` hex digits of the SHA-256 of ``model``'s weights."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()[:length]


def export(model: keras.Model, out_dir: Path, metadata: ModelMetadata) -> Path:
    """Write ``model.keras``, its OpenVINO IR (``model.xml`` + ``model.bin``) and ``metadata.json``
    (with each model file's SHA-256) into ``out_dir``.

    The IR is what the service embeds with; it is checked against the Keras model's outputs
    before it is written (``convert_to_openvino``). The files are written into a sibling folder
    that then replaces ``out_dir``, so readers never see a half-written model.

    Args:
        model: an inference model, (N, H, W, 3) RGB 0..255 -> (N, D).
        out_dir: the model directory to create or replace.
        metadata: what to write into ``metadata.json``.
    """
    return _replace_directory(Path(out_dir), lambda staging: _write_keras(model, staging, metadata))


def convert_to_openvino(model: keras.Model, out_dir: Path, *, max_error: float = VERIFY_MAX_ERROR) -> None:
    """Write ``model`` as the OpenVINO IR ``out_dir/model.xml`` + ``model.bin`` (float32, dynamic batch).

    The IR's outputs for a seeded batch of random images must match the Keras model's.

    Raises:
        IntegrityError: an output differs from Keras's by more than ``max_error`` of its L2 norm.
    """
    import tempfile

    import openvino as ov

    with tempfile.TemporaryDirectory() as scratch:
        model.export(f"{scratch}/savedmodel", verbose=False)
        network = ov.convert_model(f"{scratch}/savedmodel")
    ov.save_model(network, Path(out_dir) / IR_FILE, compress_to_fp16=False)
    height, width = model.input_shape[1:3]
    images = np.random.default_rng(0).uniform(0, 255, (VERIFY_IMAGES, height, width, 3)).astype(np.float32)
    compiled = ov.Core().compile_model(Path(out_dir) / IR_FILE, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    expected = np.asarray(model(images, training=False), dtype=np.float64)
    actual = np.asarray(compiled(images)[compiled.output(0)], dtype=np.float64)
    error = (np.linalg.norm(expected - actual, axis=1)
             / np.maximum(np.linalg.norm(expected, axis=1), 1e-6)).max()
    if error > max_error:
        raise IntegrityError(f"the OpenVINO conversion differs from the Keras model: relative error "
                             f"{error:.2e} > {max_error:g}")
    log.info("converted to OpenVINO IR; outputs match Keras's (relative error %.1e)", error)


def add_openvino(model_dir: Path, out_dir: Path) -> Path:
    """Write ``model_dir``'s model with its OpenVINO IR beside it into ``out_dir`` (may be ``model_dir``).

    Raises:
        FileNotFoundError: ``model_dir`` holds no model.
        IntegrityError: its ``model.keras`` is not the recorded file, or the conversion differs.
    """
    metadata = ModelMetadata.load(Path(model_dir))
    model = keras.saving.load_model(metadata.verified(Path(model_dir), MODEL_FILE), compile=False)
    return export(model, out_dir, metadata)


def export_keras_json_h5(model_dir: Path, out_dir: Path) -> Path:
    """Write the model of ``model_dir`` in the seed's form: ``model.json`` + ``model.h5`` + metadata.

    ``keras.models.model_from_json`` on the first, then ``load_weights`` of the second, rebuild
    it; the metadata records both files' SHA-256.

    Raises:
        FileNotFoundError: ``model_dir`` holds no model.
        IntegrityError: its ``model.keras`` is not the file its metadata records.
    """
    metadata = ModelMetadata.load(Path(model_dir))
    model = keras.saving.load_model(metadata.verified(Path(model_dir), MODEL_FILE), compile=False)

    def write(staging: Path) -> None:
        (staging / JSON_FILE).write_text(model.to_json())
        model.save(staging / H5_FILE)  # legacy HDF5: what load_weights reads after model_from_json
        metadata.sha256 = {name: file_sha256(staging / name) for name in (JSON_FILE, H5_FILE)}
        metadata.save(staging)

    return _replace_directory(Path(out_dir), write)


def _write_keras(model: keras.Model, staging: Path, metadata: ModelMetadata) -> None:
    """Save ``model.keras``, its IR and the metadata recording their digests into ``staging``."""
    model.save(staging / MODEL_FILE)
    convert_to_openvino(model, staging)
    metadata.runtime = RuntimeInput().to_dict()  # the IR takes what the Keras model takes
    metadata.sha256 = {name: file_sha256(staging / name) for name in (MODEL_FILE, IR_FILE, IR_WEIGHTS_FILE)}
    metadata.save(staging)


def _replace_directory(out_dir: Path, write: Callable[[Path], None]) -> Path:
    """Have ``write`` fill a sibling staging folder, then swap it in for ``out_dir``."""
    staging = out_dir.with_name(f".{out_dir.name}.new")
    retired = out_dir.with_name(f".{out_dir.name}.old")
    for folder in (staging, retired):
        shutil.rmtree(folder, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    if out_dir.exists():
        out_dir.rename(retired)
    staging.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)
    log.info("wrote %s", out_dir)
    return out_dir
