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
from numpy.typing import ArrayLike, NDArray

from embedder.datasets import list_identity_folders
from embedder.evaluation.evaluate import embed_items
from embedder.metadata import ModelMetadata
from embedder.reid_model import ReidEmbedder
from embedder.training.export import export, weights_digest

DIMS = 128
SHRINKAGE = 1.0
LAYER_NAME = "lda_projection"


def check_dims(dims: int, embedding_dim: int, persons: int) -> None:
    """Refuse an LDA of ``persons`` persons' ``embedding_dim``-d vectors to ``dims`` dimensions
    that cannot be fitted.

    Raises:
        ValueError: fewer than two persons, or ``dims`` outside 1..min(embedding_dim, persons - 1).
    """
    if persons < 2:
        raise ValueError(f"LDA needs at least two persons, got {persons}")
    most = min(embedding_dim, persons - 1)
    if not 1 <= dims <= most:
        raise ValueError(f"dims must lie in 1..{most} (the embedding size and persons - 1), got {dims}")


def fit_lda(embeddings: ArrayLike, labels: ArrayLike, dims: int = DIMS,
            shrinkage: float = SHRINKAGE) -> NDArray[np.float32]:
    """Return the (D, dims) regularized Fisher LDA projection of labelled ``embeddings``.

    With S_w the within-person scatter plus ``shrinkage`` times its mean eigenvalue on the
    diagonal, and S_b the scatter of the person means, the columns are the ``dims`` leading
    solutions of S_b v = l S_w v, scaled so that the projected S_w is the identity.

    Args:
        embeddings: (N, D) vectors, e.g. an embedder's unit rows for the training images.
        labels: (N,) person of each row.

    Raises:
        ValueError: shapes disagree, fewer than two persons, ``dims`` outside
            1..min(D, persons - 1), or ``shrinkage`` not positive.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (len(x),):
        raise ValueError(f"need (N, D) embeddings and N labels, got {x.shape} and {labels.shape}")
    persons, index = np.unique(labels, return_inverse=True)
    check_dims(dims, x.shape[1], len(persons))
    if not shrinkage > 0:
        raise ValueError(f"shrinkage must be positive, got {shrinkage}")
    means = np.zeros((len(persons), x.shape[1]))
    np.add.at(means, index, x)
    means /= np.bincount(index)[:, None]
    deviations = x - means[index]
    within = deviations.T @ deviations / len(x)
    within += shrinkage * max(np.trace(within) / len(within), np.finfo(np.float64).tiny) * np.eye(len(within))
    between = (means - x.mean(axis=0)).T @ (means - x.mean(axis=0)) / len(persons)
    # S_w = L L^T turns the generalized problem into the symmetric L^-1 S_b L^-T u = l u, v = L^-T u.
    inverse = np.linalg.inv(np.linalg.cholesky(within))
    _, vectors = np.linalg.eigh(inverse @ between @ inverse.T)
    return (inverse.T @ vectors[:, ::-1][:, :dims]).astype(np.float32)


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
    check_dims(dims, embedder.dim, len({item.person for item in items}))
    embeddings = embed_items(embedder, items, batch_size, progress, desc="embedding training images")
    projection = fit_lda(embeddings, [item.person for item in items], dims, shrinkage)
    model = append_projection(embedder.keras_model, projection)
    stem = embedder.model_id.rsplit("-", 1)[0]
    metadata = replace(
        embedder.metadata, model_id=f"{stem}-lda{dims}-{weights_digest(model)}", embedding_dim=dims,
        validation={}, threshold=None, threshold_target_fmr=None,
        projection={"method": "fisher-lda", "dims": dims, "shrinkage": shrinkage,
                    "fitted_on": f"{len(items)} images of {len({item.person for item in items})} "
                                 f"persons from {data_dir}",
                    "source_model": embedder.model_id})
    export(model, Path(out_dir), metadata)
    return metadata
