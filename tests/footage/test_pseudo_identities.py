"""Pseudo-identity mining on synthetic tracks whose true persons are known."""

from __future__ import annotations

import numpy as np
import pytest

from footage.pseudo_identities import TrackSummary, mine_identities, overlaps


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def person_tracks(seed: int = 0) -> tuple[list[TrackSummary], list[int]]:
    """Five persons, each split into 2-4 tracks over two cameras at separate times, with noise."""
    rng = np.random.default_rng(seed)
    centres = [unit(rng.normal(size=32)) for _ in range(5)]
    tracks, truth = [], []
    for person, centre in enumerate(centres):
        for piece in range(2 + person % 3):
            start = 100.0 * piece + 7.0 * person
            tracks.append(TrackSummary(camera=f"cam{piece % 2}", start=start, end=start + 5.0,
                                       vector=unit(centre + 0.25 * unit(rng.normal(size=32)))))
            truth.append(person)
    return tracks, truth


def same_partition(labels: list[int], truth: list[int]) -> bool:
    pairs = zip(labels, truth, strict=True)
    return len(set(pairs)) == len(set(labels)) == len(set(truth))


def test_the_pieces_of_each_person_are_joined_and_persons_kept_apart() -> None:
    tracks, truth = person_tracks()
    labels = mine_identities(tracks, link_threshold=0.8)
    assert same_partition(labels, truth)
    assert labels[0] == 0 and max(labels) == 4  # numbered in order of first appearance


def test_tracks_overlapping_on_one_camera_are_never_joined_however_alike() -> None:
    vector = unit(np.ones(8))
    twins = [TrackSummary("cam", 0.0, 10.0, vector), TrackSummary("cam", 5.0, 15.0, vector),
             TrackSummary("other", 5.0, 15.0, vector), TrackSummary("cam", 20.0, 30.0, vector)]
    assert overlaps(twins[0], twins[1]) and not overlaps(twins[0], twins[2])
    labels = mine_identities(twins, link_threshold=0.5)
    assert labels[0] != labels[1]  # seen together on one camera: two persons
    assert len(set(labels)) == 2  # the others join one of them without breaking the constraint
    for a in range(4):
        for b in range(a + 1, 4):
            if labels[a] == labels[b]:
                assert not overlaps(twins[a], twins[b])


def test_a_high_threshold_joins_nothing_and_bad_input_is_refused() -> None:
    tracks, _ = person_tracks(1)
    assert mine_identities(tracks, link_threshold=1.0) == list(range(len(tracks)))
    assert mine_identities([], 0.5) == []
    with pytest.raises(ValueError, match="cosine similarity"):
        mine_identities(tracks, link_threshold=1.5)
