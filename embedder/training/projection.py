"""Fisher linear discriminant analysis of a trained model's vectors, appended to the model.

A network trained on a few hundred identities keeps directions in its embedding along which
one person's images vary (pose, light, camera) about as much as persons differ. LDA, fitted
on the training identities' embeddings, keeps the directions that best separate persons
relative to how each person varies, and whitens that variation. It is linear, so it becomes
one bias-free Dense layer at the end of the model: vectors stay comparable by cosine,
flip averaging still sums two passes, and the embedding gets smaller. Nothing about the
query or the gallery is used: the evaluation protocol stays the standard one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from numpy.typing import ArrayLike

from embedder.datasets import list_identity_folders
from embedder.evaluation.evaluate import embed_items
from embedder.metadata import ModelMetadata
from embedder.reid_model import ReidEmbedder
from embedder.training.export import export, weights_digest
from embedder.training.lda import DIMS, SHRINKAGE, check_dims, fit_lda

LAYER_NAME = "lda_projection"


def append_projection(model: keras.Model, projection: ArrayLike) -> keras.Model:
    """Return ``model`` followed by a bias-free Dense layer holding the (D, dims) ``projection``.

    Raises:
        ValueError: ``projection``'s rows do not match the model's output size.
    """
    weights = np.asarray(projection, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[0] != model.output_shape[-1]:
        raise ValueError(f"projection must be ({model.output_shape[-1]}, dims), got {weights.shape}")
    layer = keras.layers.Dense(weights.shape[1], use_bias=False, name=LAYER_NAME)
    projected = keras.Model(model.inputs, layer(model.outputs[0]), name=model.name)
    layer.set_weights([weights])
    return projected


def project_model(model_dir: Path, data_dir: Path, out_dir: Path, dims: int = DIMS,
                  shrinkage: float = SHRINKAGE, batch_size: int = 64, progress: bool = True) -> ModelMetadata:
    """Fit LDA on the model's embeddings of DATA_DIR's persons; export the projected model.

    The exported metadata records the projection; it has no validation figures or threshold
    until the new model is evaluated and calibrated (its vectors differ from the old ones).

    Raises:
        FileNotFoundError, ValueError: no model or no per-person folders, a model that already
            ends in a projection, or arguments ``fit_lda`` refuses.
        ImageError: an image cannot be read.
    """
    embedder = ReidEmbedder(model_dir, batch_size=batch_size)
    if embedder.metadata.projection:
        raise ValueError(f"{model_dir} already ends in a projection ({embedder.metadata.projection})")
    items = list_identity_folders(data_dir)
    persons = [item.person for item in items]
    check_dims(dims, embedder.dim, len(set(persons)))
    embeddings = embed_items(embedder, items, batch_size, progress, desc="embedding training images")
    projection = fit_lda(embeddings, persons, dims, shrinkage)
    model = append_projection(embedder.keras_model, projection)
    stem = embedder.model_id.rsplit("-", 1)[0]
    metadata = replace(
        embedder.metadata, model_id=f"{stem}-lda{dims}-{weights_digest(model)}", embedding_dim=dims,
        validation={}, threshold=None, threshold_target_fmr=None,
        projection={"method": "fisher-lda", "dims": dims, "shrinkage": shrinkage,
                    "fitted_on": f"{len(items)} images of {len(set(persons))} persons from {data_dir}",
                    "source_model": embedder.model_id})
    export(model, Path(out_dir), metadata)
    return metadata
