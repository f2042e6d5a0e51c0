"""Saving an inference model in the project's model-directory layout."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import keras
import numpy as np

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
    """Write ``model.keras``, ``model.json`` + ``model.h5`` and ``metadata.json`` into ``out_dir``.

    ``model.json`` and ``model.h5`` are the seed's form: ``keras.models.model_from_json`` on
    the first, then ``load_weights`` of the second. The files are written into a sibling
    folder that then replaces ``out_dir``, so readers never see a half-written model.

    Args:
        model: an inference model, (N, H, W, 3) RGB 0..255 -> (N, D).
        out_dir: the model directory to create or replace.
        metadata: what to write into ``metadata.json``.
    """
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.new")
    retired = out_dir.with_name(f".{out_dir.name}.old")
    for folder in (staging, retired):
        shutil.rmtree(folder, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(staging / MODEL_FILE)
    (staging / JSON_FILE).write_text(model.to_json())
    model.save(staging / H5_FILE)  # legacy HDF5: what load_weights reads after model_from_json
    metadata.save(staging)
    if out_dir.exists():
        out_dir.rename(retired)
    staging.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)
    log.info("exported %s to %s", metadata.model_id, out_dir)
    return out_dir
