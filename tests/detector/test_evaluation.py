"""IoU, greedy matching and MOT ground truth reading, against hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.base import Detection
from detector.evaluation import MatchCounts, match_frame, read_mot_boxes


def test_match_frame_counts_and_ignores_short_persons() -> None:
    truth = [(0, 0, 20, 100), (100, 0, 20, 100), (200, 0, 10, 30)]  # the last is too short
    detections = [
        Detection(1, 1, 20, 100, 0.9),    # first person
        Detection(0, 0, 20, 95, 0.8),     # duplicate of the first: false positive
        Detection(200, 0, 10, 30, 0.7),   # the short person: neither right nor wrong
        Detection(300, 0, 20, 100, 0.6),  # nobody there
    ]
    assert match_frame(detections, truth) == MatchCounts(1, 2, 1)
    assert match_frame([], truth) == MatchCounts(0, 0, 2)
    assert match_frame(detections[:1], []) == MatchCounts(0, 1, 0)


def test_counts_sum_and_ratios() -> None:
    total = MatchCounts(3, 1, 0) + MatchCounts(1, 0, 4)
    assert total == MatchCounts(4, 1, 4)
    assert (total.recall, total.precision) == (0.5, 0.8)
    assert (MatchCounts().recall, MatchCounts().precision) == (1.0, 1.0)


def test_read_mot_boxes(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,9,311.9,98.8,19.4,47.0\n1,2,1,2,3,4,1,-1,-1,-1\n\n3,1,0,0,5,6\n")
    assert read_mot_boxes(path) == {1: [(311.9, 98.8, 19.4, 47.0), (1, 2, 3, 4)], 3: [(0, 0, 5, 6)]}
    path.write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"gt\.txt:1"):
        read_mot_boxes(path)
