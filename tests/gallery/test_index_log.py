"""The index's snapshot and delta log: exact/ANN agreement, catching up, integrity, erasure, compaction.

Seeded synthetic vectors, checked against brute-force search.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from embedder.base import l2_normalize
from gallery.vector_index import VectorIndex


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, dim)))


def clustered(identities: int, views: int, dim: int, seed: int) -> np.ndarray:
    """Vectors shaped like a re-ID gallery: a few views around each identity's centre."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(identities, dim)))
    return l2_normalize(np.repeat(centres, views, axis=0) + rng.normal(size=(identities * views, dim)) * 0.05)


def brute_force(base: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ base.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def index_at(directory: Path, **options: Any) -> VectorIndex:
    return VectorIndex(directory, "gallery", "m", 32, **options)


def test_below_the_threshold_results_are_those_of_a_flat_index(tmp_path: Path) -> None:
    base, queries = unit_vectors(3000, 32, 0), unit_vectors(20, 32, 1)
    ids = np.arange(5, 3005, dtype=np.int64)
    index = index_at(tmp_path)
    index.add(ids, base)
    reference = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    reference.add_with_ids(base, ids)
    assert index.layout == "flat"
    for k in (1, 10, 100):
        scores, found = index.search(queries, k)
        expected_scores, expected_ids = reference.search(queries, k)
        np.testing.assert_array_equal(found, expected_ids)
        np.testing.assert_array_equal(scores, expected_scores)


def test_ivf_above_the_threshold_agrees_with_exact_search(tmp_path: Path) -> None:
    base, queries = clustered(600, 8, 32, 2), clustered(600, 1, 32, 2)[:50]
    ids = np.arange(1, len(base) + 1, dtype=np.int64)
    index = index_at(tmp_path, ann_threshold=2000, nprobe=8)
    index.rebuild(ids, base)
    assert index.layout.startswith("ivf")
    scores, found = index.search(queries, 10)
    _, exact_ids = brute_force(base, ids, queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.tolist(), exact_ids.tolist())])
    assert recall >= 0.95
    hit = found >= 0  # the scores of the hits are exact: the vectors are stored whole
    np.testing.assert_allclose(scores[hit], np.sum(queries[:, None, :] * base[found - 1], axis=2)[hit], atol=1e-5)


def test_a_shrunk_ivf_index_is_searched_exactly(tmp_path: Path) -> None:
    base, queries = clustered(300, 8, 32, 3), unit_vectors(10, 32, 4)
    ids = np.arange(1, 2401, dtype=np.int64)
    index = index_at(tmp_path, ann_threshold=2000, nprobe=1)
    index.rebuild(ids, base)
    gone = np.arange(1, 601, dtype=np.int64)
    assert index.remove(gone) == 600 and index.layout.startswith("ivf")  # below the threshold now
    scores, found = index.search(queries, 10)
    exact_scores, exact_ids = brute_force(base[600:], ids[600:], queries, 10)
    np.testing.assert_array_equal(found, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)


@pytest.mark.parametrize("threshold", [1_000_000, 500])
def test_a_second_copy_catches_up_from_the_log(tmp_path: Path, threshold: int) -> None:
    writer = index_at(tmp_path, ann_threshold=threshold, compact_min_bytes=8192, compact_fraction=0.05)
    writer.rebuild(np.arange(1, 1001, dtype=np.int64), unit_vectors(1000, 32, 5))
    writer.mark(1)
    reader = index_at(tmp_path, ann_threshold=threshold)
    assert reader.load() and reader.generation == 1
    snapshots, next_id = {writer.path.stat().st_ino}, 1001
    for step in range(40):
        writer.add(np.arange(next_id, next_id + 5, dtype=np.int64), unit_vectors(5, 32, 100 + step))
        next_id += 5
        writer.remove(np.array([step * 7 + 1, next_id - 1], dtype=np.int64))
        writer.mark(step + 2)
        snapshots.add(writer.path.stat().st_ino)
        if step % 3 == 0:
            assert reader.catch_up(), step  # across compactions too: no reload
            assert reader.generation == step + 2
            assert sorted(reader.ids().tolist()) == sorted(writer.ids().tolist())
    assert len(snapshots) > 2  # the log was folded into new snapshots meanwhile
    assert reader.catch_up() and reader.generation == writer.generation == 41
    queries = unit_vectors(10, 32, 6)
    for one, other in zip(reader.search(queries, 10), writer.search(queries, 10)):
        np.testing.assert_array_equal(one, other)
    fresh = index_at(tmp_path, ann_threshold=threshold)
    assert fresh.load() and sorted(fresh.ids().tolist()) == sorted(writer.ids().tolist())
    assert not list(tmp_path.glob("*.tmp"))


def test_a_change_of_layout_asks_for_a_reload(tmp_path: Path) -> None:
    writer = index_at(tmp_path, ann_threshold=800)
    writer.rebuild(np.arange(1, 701, dtype=np.int64), unit_vectors(700, 32, 7))
    reader = index_at(tmp_path, ann_threshold=800)
    assert reader.load() and reader.layout == "flat"
    writer.add(np.arange(701, 901, dtype=np.int64), unit_vectors(200, 32, 8))  # crosses it: an IVF snapshot
    assert writer.layout.startswith("ivf")
    assert not reader.catch_up()
    assert reader.load() and reader.layout == writer.layout and len(reader) == 900


def written_twice(directory: Path) -> VectorIndex:
    index = index_at(directory)
    index.rebuild(np.arange(1, 11, dtype=np.int64), unit_vectors(10, 32, 9))
    index.add(np.array([11, 12]), unit_vectors(2, 32, 10))
    index.add(np.array([13]), unit_vectors(1, 32, 11))
    return index


def test_a_torn_last_record_is_dropped_and_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = written_twice(tmp_path)
    data = index.log_path.read_bytes()
    index.log_path.write_bytes(data[:-40])  # the last record half written
    reader = index_at(tmp_path)
    with caplog.at_level(logging.INFO):
        assert reader.load()
    assert sorted(reader.ids().tolist()) == list(range(1, 13)) and "torn record" in caplog.text
    reader.add(np.array([14]), unit_vectors(1, 32, 12))  # appended where the torn one began
    again = index_at(tmp_path)
    assert again.load() and sorted(again.ids().tolist()) == [*range(1, 13), 14]


def test_an_altered_record_makes_the_files_unusable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = written_twice(tmp_path)
    data = bytearray(index.log_path.read_bytes())
    position = len(data) - 300  # inside the first vector record, not the last
    data[position] ^= 0x01
    index.log_path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert not index_at(tmp_path).load()
    assert "damaged or altered" in caplog.text


def test_records_in_another_order_are_refused(tmp_path: Path) -> None:
    index = index_at(tmp_path)
    index.rebuild(np.arange(1, 11, dtype=np.int64), unit_vectors(10, 32, 13))
    header = index.log_path.stat().st_size
    index.add(np.array([11]), unit_vectors(1, 32, 14))
    index.add(np.array([12]), unit_vectors(1, 32, 15))
    data = index.log_path.read_bytes()
    record = (len(data) - header) // 2  # two records of one size
    index.log_path.write_bytes(data[:header] + data[header + record:] + data[header:header + record])
    assert not index_at(tmp_path).load()


def test_an_altered_snapshot_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = written_twice(tmp_path)
    data = bytearray(index.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    index.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert not index_at(tmp_path).load()
    assert "does not match the checksum" in caplog.text


@pytest.mark.parametrize("threshold", [1_000_000, 300])
def test_removed_vectors_are_erased_from_the_files(tmp_path: Path, threshold: int) -> None:
    base = unit_vectors(400, 32, 16)
    index = index_at(tmp_path, ann_threshold=threshold)
    index.rebuild(np.arange(1, 401, dtype=np.int64), base)
    extra = unit_vectors(3, 32, 17)
    index.add(np.array([401, 402, 403]), extra)
    assert index.remove(np.array([5, 402, 999])) == 2
    files = index.path.read_bytes() + index.log_path.read_bytes()
    assert base[4].tobytes() not in files and extra[1].tobytes() not in files
    assert base[5].tobytes() in files and extra[2].tobytes() in files
    reloaded = index_at(tmp_path, ann_threshold=threshold)
    assert reloaded.load()  # the checksums were updated with the erasure
    assert sorted(reloaded.ids().tolist()) == sorted(set(range(1, 404)) - {5, 402})


def test_the_log_is_folded_into_a_snapshot_when_it_outgrows_it(tmp_path: Path) -> None:
    index = index_at(tmp_path, compact_min_bytes=0)
    index.rebuild(np.arange(1, 101, dtype=np.int64), unit_vectors(100, 32, 18))
    first, header = index.path.stat().st_ino, index.log_path.stat().st_size
    index.add(np.arange(101, 111, dtype=np.int64), unit_vectors(10, 32, 19))  # 10% of the snapshot: kept
    assert index.path.stat().st_ino == first and index.log_path.stat().st_size > header
    index.add(np.arange(111, 131, dtype=np.int64), unit_vectors(20, 32, 20))  # past 25%: folded in
    assert index.path.stat().st_ino != first and index.log_path.stat().st_size == header
    reloaded = index_at(tmp_path)
    assert reloaded.load() and sorted(reloaded.ids().tolist()) == list(range(1, 131))


def test_compaction_waits_for_the_end_of_a_marked_write(tmp_path: Path) -> None:
    index = index_at(tmp_path, compact_min_bytes=0)
    index.rebuild(np.arange(1, 101, dtype=np.int64), unit_vectors(100, 32, 21))
    first = index.path.stat().st_ino
    with index.compacting_after():
        index.add(np.arange(101, 141, dtype=np.int64), unit_vectors(40, 32, 22))  # past 25%
        assert index.path.stat().st_ino == first  # not yet: the mark goes first
        index.mark(2)
        reader = index_at(tmp_path)
        assert reader.load() and reader.generation == 2 and len(reader) == 140
    assert index.path.stat().st_ino != first
    assert reader.catch_up() and len(reader) == 140  # and follows the compaction
