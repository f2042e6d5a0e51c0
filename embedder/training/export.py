"""Saving an inference model in the project's model-directory layout."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from base.integrity import file_sha256
from embedder.metadata import ModelMetadata
from embedder.reid_model import MODEL_FILE

log = logging.getLogger(__name__)

JSON_FILE = "model.json"
H5_FILE = "model.h5"


def weights_digest(model: keras.Model, length: int = 12) -> str:
    """Return the first ``length`` hex digits of the SHA-256 of ``model``'s weights."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()[:length]


def export(model: keras.Model, out_dir: Path, metadata: ModelMetadata) -> Path:
    """Write ``model.keras`` and ``metadata.json`` (with the model file's SHA-256) into ``out_dir``.

    The files are written into a sibling folder that then replaces ``out_dir``, so readers
    never see a half-written model.

    Args:
        model: an inference model, (N, H, W, 3) RGB 0..255 -> (N, D).
        out_dir: the model directory to create or replace.
        metadata: what to write into ``metadata.json``.
    """
    return _replace_directory(Path(out_dir), lambda staging: _write_keras(model, staging, metadata))


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
    """Save ``model.keras`` and the metadata recording its digest into ``staging``."""
    model.save(staging / MODEL_FILE)
    metadata.sha256 = {MODEL_FILE: file_sha256(staging / MODEL_FILE)}
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
