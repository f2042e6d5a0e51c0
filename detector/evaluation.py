"""Scoring person boxes against MOT-format ground truth: IoU matching, recall and precision."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base.boxes import iou_matrix
from detector.base import Detection

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class MatchCounts:
    """True positives, false positives and false negatives, summed over frames."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def __add__(self, other: MatchCounts) -> MatchCounts:
        """Sum two counts."""
        return MatchCounts(self.true_positives + other.true_positives,
                           self.false_positives + other.false_positives,
                           self.false_negatives + other.false_negatives)

    @property
    def recall(self) -> float:
        """Return the share of counted persons found (1.0 when there are none)."""
        total = self.true_positives + self.false_negatives
        return self.true_positives / total if total else 1.0

    @property
    def precision(self) -> float:
        """Return the share of counted boxes that are persons (1.0 when there are none)."""
        total = self.true_positives + self.false_positives
        return self.true_positives / total if total else 1.0


def read_mot_boxes(path: str | Path) -> dict[int, list[Box]]:
    """Read MOT ground truth (``frame,id,x,y,w,h[,...]`` lines, frames from 1).

    Returns:
        Frame number to the ``(x, y, w, h)`` pixel boxes in it.

    Raises:
        ValueError: a line has fewer than six fields.
    """
    boxes: dict[int, list[Box]] = defaultdict(list)
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 6:
            raise ValueError(f"{path}:{number}: expected frame,id,x,y,w,h, got {line!r}")
        x, y, w, h = (float(v) for v in fields[2:6])
        boxes[int(float(fields[0]))].append((x, y, w, h))
    return dict(boxes)


def match_frame(detections: Sequence[Detection], truth: Sequence[Box], *,
                iou_threshold: float = 0.5, min_height: float = 50.0) -> MatchCounts:
    """Match one frame's boxes to its ground truth, greedily by score.

    Each detection, best score first, takes the unmatched truth box it overlaps most if that
    IoU reaches ``iou_threshold``. Truth boxes shorter than ``min_height`` are ignored: missing
    them costs nothing and a detection matched to one is neither right nor wrong.

    Returns:
        The frame's counts.
    """
    truth_array = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    counted = truth_array[:, 3] >= min_height
    ordered = sorted(detections, key=lambda d: d.score, reverse=True)
    ious = iou_matrix(np.array([d.as_list() for d in ordered], dtype=np.float64), truth_array)
    taken = np.zeros(len(truth_array), dtype=bool)
    true_positives = false_positives = 0
    for row in ious:
        candidates = np.where(taken, -1.0, row)
        best = int(np.argmax(candidates)) if len(candidates) else -1
        if best < 0 or candidates[best] < iou_threshold:
            false_positives += 1
            continue
        taken[best] = True
        true_positives += int(counted[best])
    false_negatives = int(np.sum(counted & ~taken))
    return MatchCounts(true_positives, false_positives, false_negatives)
