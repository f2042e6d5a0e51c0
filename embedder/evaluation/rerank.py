"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), as torchreid's and fast-reid's ``re_ranking``. Pure numpy.

Re-ranking looks at the neighbours of the gallery images and of the other queries, not only at
query-gallery similarities: it changes the evaluation protocol, so its figures are reported apart
from the standard ones. Memory grows as (Q + G)^2.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

K1 = 20
K2 = 6
LAMBDA = 0.3


def _k_reciprocal(ranks: NDArray[np.intp], i: int, k: int) -> NDArray[np.intp]:
    """Return the entries among ``i``'s k+1 nearest (itself included) that have ``i`` among theirs."""
    forward = ranks[i, :k + 1]
    return forward[np.any(ranks[forward, :k + 1] == i, axis=1)]


def _expanded_neighbours(ranks: NDArray[np.intp], i: int, k1: int) -> NDArray[np.intp]:
    """Return ``i``'s k1-reciprocal set, grown by each member's k1/2-reciprocal set that mostly
    (more than 2/3) lies inside it."""
    neighbours = _k_reciprocal(ranks, i, k1)
    expanded = [neighbours]
    for candidate in neighbours:
        candidate_set = _k_reciprocal(ranks, int(candidate), round(k1 / 2))
        if np.intersect1d(candidate_set, neighbours).size > 2 / 3 * candidate_set.size:
            expanded.append(candidate_set)
    return np.unique(np.concatenate(expanded))


def k_reciprocal_distances(
    query: NDArray[np.floating],
    gallery: NDArray[np.floating],
    k1: int = K1,
    k2: int = K2,
    lambda_: float = LAMBDA,
) -> NDArray[np.float64]:
    """Return re-ranked query-gallery distances: lower means more alike.

    Squared Euclidean distances between all Q + G rows are divided by each row's largest; each
    row's expanded k1-reciprocal neighbours get weights ``exp(-distance)`` summing to 1, which
    are then averaged over its ``k2`` nearest rows (local query expansion). The result is
    ``(1 - lambda_) * jaccard + lambda_ * distance``, where the Jaccard distance compares two
    rows' weights.

    Args:
        query: (Q, D) float query embeddings (unit rows, as an Embedder returns).
        gallery: (G, D) float gallery embeddings.
        k1: neighbourhood size of the k-reciprocal sets (the paper's 20).
        k2: rows averaged in the local query expansion (the paper's 6; 1 turns it off).
        lambda_: weight of the original distance, in [0, 1] (the paper's 0.3).

    Returns:
        (Q, G) float64 distances.

    Raises:
        ValueError: shapes disagree, a set is empty, ``k1`` or ``k2`` < 1, or ``lambda_``
            outside [0, 1].
    """
    query = np.asarray(query, dtype=np.float64)
    gallery = np.asarray(gallery, dtype=np.float64)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query and gallery must be (Q, D) and (G, D) with the same D, got "
                         f"{query.shape} and {gallery.shape}")
    if len(query) == 0 or len(gallery) == 0:
        raise ValueError("re-ranking needs at least one query and one gallery embedding")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got {k1} and {k2}")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must lie in [0, 1], got {lambda_}")

    rows = np.concatenate([query, gallery])
    squared_norms = np.sum(rows * rows, axis=1)
    distances = np.maximum(squared_norms[:, None] + squared_norms[None, :] - 2.0 * rows @ rows.T, 0.0)
    distances /= np.maximum(distances.max(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    ranks = np.argsort(distances, axis=1, kind="stable")

    weights = np.zeros_like(distances)
    for i in range(len(rows)):
        neighbours = _expanded_neighbours(ranks, i, k1)
        row = np.exp(-distances[i, neighbours])
        weights[i, neighbours] = row / row.sum()
    if k2 > 1:
        weights = weights[ranks[:, :k2]].mean(axis=1)

    num_query = len(query)
    jaccard = np.empty((num_query, len(rows)))
    for q in range(num_query):
        shared = np.minimum(weights[q][None, :], weights).sum(axis=1)
        jaccard[q] = 1.0 - shared / (2.0 - shared)
    final = (1.0 - lambda_) * jaccard + lambda_ * distances[:num_query]
    return final[:, num_query:]
