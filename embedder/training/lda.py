"""Regularized Fisher linear discriminant analysis of labelled vectors. Pure numpy.

``projection`` appends the fitted map to a model; this module only fits it, so the command
line can read its defaults without loading TensorFlow.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DIMS = 128
SHRINKAGE = 1.0


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
    spread = means - x.mean(axis=0)
    between = spread.T @ spread / len(persons)
    # S_w = L L^T turns the generalized problem into the symmetric L^-1 S_b L^-T u = l u, v = L^-T u.
    inverse = np.linalg.inv(np.linalg.cholesky(within))
    _, vectors = np.linalg.eigh(inverse @ between @ inverse.T)
    return (inverse.T @ vectors[:, ::-1][:, :dims]).astype(np.float32)
