"""The FAISS index wrapper, checked against brute-force search on seeded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.base import l2_normalize
from gallery.vector_index import IdFingerprint, VectorIndex


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, dim)))


def test_search_matches_brute_force(tmp_path: Path) -> None:
    base, queries = unit_vectors(200, 16, 0), unit_vectors(5, 16, 1)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = VectorIndex(tmp_path, "gallery", "m1", 16)
    index.add(ids, base)
    scores, found = index.search(queries, 10)
    exact = queries @ base.T
    expected = np.argsort(-exact, axis=1)[:, :10]
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(exact, expected, axis=1), rtol=1e-5)


def test_save_load_and_remove(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "gallery", "model/v1", 8)
    index.add(np.array([3, 7, 9]), unit_vectors(3, 8, 2))
    assert index.path.name == "gallery-model_v1.faiss"
    assert index.remove(np.array([7, 42])) == 1
    reloaded = VectorIndex(tmp_path, "gallery", "model/v1", 8)
    assert reloaded.load()
    assert sorted(reloaded.ids().tolist()) == [3, 9]
    assert reloaded.fingerprint() == IdFingerprint(2, 12, 9)
    assert not list(tmp_path.glob("*.tmp"))


def test_ids_already_held_are_refused(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "gallery", "m", 4)
    index.add(np.array([1, 2]), unit_vectors(2, 4, 6))
    with pytest.raises(ValueError, match="already holds"):
        index.add(np.array([2, 3]), unit_vectors(2, 4, 7))
    with pytest.raises(ValueError, match="distinct"):
        index.add(np.array([5, 5]), unit_vectors(2, 4, 8))
    assert sorted(index.ids().tolist()) == [1, 2]


def test_k_larger_than_size_and_empty_index(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "gallery", "m", 4)
    scores, ids = index.search(unit_vectors(2, 4, 3), 5)
    assert scores.shape == ids.shape == (2, 0)
    index.add(np.array([1]), unit_vectors(1, 4, 4))
    assert index.search(unit_vectors(2, 4, 3), 5)[1].shape == (2, 1)


def test_wrong_dimension_or_dtype_is_refused(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, "gallery", "m", 4)
    with pytest.raises(TypeError, match="float32 array of shape"):
        index.add(np.array([1]), np.ones((1, 5), np.float32))
    with pytest.raises(TypeError):
        index.search(np.ones((1, 4), np.float64), 1)


def test_unreadable_or_other_dimension_file_is_ignored(tmp_path: Path) -> None:
    other = VectorIndex(tmp_path, "gallery", "m", 8)
    other.add(np.array([1]), unit_vectors(1, 8, 5))
    assert not VectorIndex(tmp_path, "gallery", "m", 4).load()
    other.path.write_bytes(b"garbage")
    assert not VectorIndex(tmp_path, "gallery", "m", 8).load()
