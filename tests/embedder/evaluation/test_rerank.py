"""k-reciprocal re-ranking: a hand-computed case, its limits, and its effect on clustered data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from embedder.evaluation.metrics import cmc_and_map
from embedder.evaluation.rerank import k_reciprocal_distances


def unit(*degrees: float) -> NDArray[np.float64]:
    """Return 2-D unit vectors at the given angles."""
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_hand_computed_three_points() -> None:
    # q at 0 degrees, g1 at 10, g2 at 90; squared distances are 2 - 2 cos(angle).
    d_q_g1, d_q_g2, d_g1_g2 = (2 - 2 * math.cos(math.radians(a)) for a in (10, 90, 80))
    # Each row is divided by its largest entry.
    q_row = {"q": 0.0, "g1": d_q_g1 / d_q_g2, "g2": 1.0}
    g1_row = {"q": d_q_g1 / d_g1_g2, "g1": 0.0}
    # k1 = 1: q and g1 are each other's nearest, so both sets are {q, g1}; g2's is {g2}.
    # The k1/2 = 0 expansion adds nothing; k2 = 1 turns the query expansion off.
    q_weights = np.array([math.exp(-q_row["q"]), math.exp(-q_row["g1"])])
    q_weights /= q_weights.sum()
    g1_weights = np.array([math.exp(-g1_row["q"]), math.exp(-g1_row["g1"])])
    g1_weights /= g1_weights.sum()
    shared = np.minimum(q_weights, g1_weights).sum()
    jaccard_g1 = 1 - shared / (2 - shared)
    expected = [0.7 * jaccard_g1 + 0.3 * q_row["g1"], 0.7 * 1.0 + 0.3 * q_row["g2"]]

    distances = k_reciprocal_distances(unit(0), unit(10, 90), k1=1, k2=1, lambda_=0.3)

    assert distances.shape == (1, 2)
    np.testing.assert_allclose(distances[0], expected, rtol=1e-12)


def clustered_split(seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                        NDArray[np.int64], NDArray[np.int64]]:
    """Return seeded unit query (30 x 4) and gallery (30 x 5) embeddings of 30 noisy persons."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, 16))

    def draw(per_person: int) -> NDArray[np.float64]:
        rows = (centres[:, None] + 0.9 * rng.normal(size=(30, per_person, 16))).reshape(-1, 16)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    query, gallery = draw(4), draw(5)
    return query, gallery, np.repeat(np.arange(30), 4), np.repeat(np.arange(30), 5)


def test_lambda_one_keeps_the_cosine_ranking() -> None:
    query, gallery, _, _ = clustered_split(1)
    distances = k_reciprocal_distances(query, gallery, lambda_=1.0)
    np.testing.assert_array_equal(np.argsort(distances, axis=1, kind="stable"),
                                  np.argsort(-(query @ gallery.T), axis=1, kind="stable"))


def test_reranking_raises_map_on_clustered_data() -> None:
    query, gallery, query_ids, gallery_ids = clustered_split(0)
    _, plain_map, _ = cmc_and_map(query @ gallery.T, query_ids, gallery_ids)
    _, reranked_map, _ = cmc_and_map(-k_reciprocal_distances(query, gallery), query_ids, gallery_ids)
    assert plain_map == pytest.approx(0.664, abs=0.005)
    assert reranked_map > plain_map + 0.05


@pytest.mark.parametrize(("query", "gallery", "kwargs", "message"), [
    (np.zeros((2, 3)), np.zeros((2, 4)), {}, "same D"),
    (np.zeros((0, 3)), np.zeros((2, 3)), {}, "at least one query"),
    (unit(0), unit(10), {"k1": 0}, "k1 and k2"),
    (unit(0), unit(10), {"lambda_": 1.5}, "lambda_"),
])
def test_bad_arguments_are_named(query: NDArray, gallery: NDArray, kwargs: dict,
                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        k_reciprocal_distances(query, gallery, **kwargs)
