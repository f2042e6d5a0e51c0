"""The tracker on synthetic moving boxes: crossings, gaps, short tracks, weak detections."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from footage.tracking import Tracker, buffer_boxes

RED = np.array([1.0, 0.0, 0.0], dtype=np.float32)
BLUE = np.array([0.0, 1.0, 0.0], dtype=np.float32)
GREY = np.array([0.0, 0.0, 1.0], dtype=np.float32)


def run(tracker: Tracker, frames: list[list[tuple[tuple[float, float], NDArray[np.float32]]]],
        step: int = 1, size: tuple[float, float] = (30, 80)) -> list[list[int]]:
    """Feed frames of (top-left, appearance) persons; return the track ids per frame."""
    ids = []
    for i, people in enumerate(frames):
        boxes = np.array([[x, y, *size] for (x, y), _ in people]).reshape(-1, 4)
        looks = np.array([look for _, look in people], dtype=np.float32).reshape(-1, 3)
        ids.append(tracker.update(i * step, boxes, looks).tolist())
    return ids


def test_buffer_boxes_grow_on_every_side() -> None:
    grown = buffer_boxes(np.array([[10.0, 20.0, 30.0, 40.0]]), np.array([0.5]))
    np.testing.assert_allclose(grown, [[-5.0, 0.0, 60.0, 80.0]])


def test_two_alike_persons_crossing_keep_their_tracks_by_motion() -> None:
    # 5 fps analysis of 10 fps video: boxes move 24 px between analysed frames, and overlap
    # fully in the middle; the same look, so only the predicted motion tells them apart.
    tracker = Tracker(10.0)
    frames = [[((20 + 24 * i, 100), GREY), ((260 - 24 * i, 110), GREY)] for i in range(11)]
    ids = run(tracker, frames, step=2)
    assert all(frame_ids == ids[0] for frame_ids in ids)
    kept, dropped = tracker.pop_finished()
    assert [t.track_id for t in kept] == ids[0] and not dropped
    assert all(len(t.frames) == 11 for t in kept)


def test_appearance_keeps_identities_apart_when_persons_meet_and_turn_back() -> None:
    # They walk towards each other, overlap, and both walk back where they came from: motion
    # alone would predict that they swap; appearance says they do not.
    tracker = Tracker(10.0)
    path = [0, 12, 24, 36, 44, 36, 24, 12, 0]
    frames = [[((100 + x, 100), RED), ((188 - x, 100), BLUE)] for x in path]
    ids = run(tracker, frames)
    assert all(frame_ids == ids[0] for frame_ids in ids), ids


def test_a_person_missing_briefly_stays_one_track_and_longer_starts_a_new_one() -> None:
    tracker = Tracker(10.0, max_age_s=1.0)
    walk = [((20 + 10 * i, 100), GREY) for i in range(30)]
    frames = [[walk[i]] if not 5 <= i < 12 and not 16 <= i < 28 else [] for i in range(30)]
    ids = run(tracker, frames)
    seen = [frame_ids[0] for frame_ids in ids if frame_ids]
    assert seen[:9] == [seen[0]] * 9  # frames 0-4 and 12-15: gap of 0.8 s
    assert seen[9:] == [seen[9]] * 2 and seen[9] != seen[0]  # frames 28-29: gap of 1.3 s


def test_short_tracks_are_dropped_and_tracks_end_after_max_age() -> None:
    tracker = Tracker(10.0, max_age_s=0.5, min_detections=3)
    run(tracker, [[((10, 10), RED)], [((12, 10), RED), ((200, 10), BLUE)],
                  [((14, 10), RED)], [], [], [], [], [], []])
    assert tracker.seconds_since_seen(8) is None
    kept, dropped = tracker.pop_finished(8)
    assert [len(t.frames) for t in kept] == [3] and [len(t.frames) for t in dropped] == [1]
    assert tracker.pop_finished() == ([], [])


def test_weak_detections_extend_tracks_but_never_start_them() -> None:
    tracker = Tracker(10.0)
    boxes = np.array([[10.0, 10, 30, 80]])
    assert tracker.update(0, boxes, RED[None], np.array([False])).tolist() == [0]
    both = np.array([[13.0, 10, 30, 80], [200, 10, 30, 80]])
    ids = tracker.update(1, both, np.stack([RED, BLUE]), np.array([True, True]))
    assert ids.tolist() == [0, -1]
    assert tracker.seconds_since_seen(1) == 0.0


def test_dissimilar_appearance_is_not_matched_even_when_boxes_overlap() -> None:
    tracker = Tracker(10.0, min_similarity=0.5)
    ids = run(tracker, [[((10, 10), RED)], [((10, 10), BLUE)]])
    assert ids[0] != ids[1]
