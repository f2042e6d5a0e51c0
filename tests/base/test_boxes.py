"""Box overlaps and greedy suppression, against hand-computed values."""

from __future__ import annotations

import numpy as np

from base.boxes import iou_matrix, suppress_overlaps


def test_iou_matrix_matches_hand_computed_values() -> None:
    a = np.array([[0, 0, 10, 10], [5, 5, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]])
    expected = np.array([[1.0, 50 / 150, 0.0, 0.0], [25 / 175, 50 / 150, 0.0, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_suppress_overlaps_keeps_best_of_duplicates_and_drops_contained_parts() -> None:
    boxes = np.array([
        [0, 0, 50, 100],     # whole person
        [2, 5, 50, 95],      # duplicate, IoU ~0.87
        [10, 10, 30, 40],    # part inside the first
        [200, 0, 50, 100],   # another person, no overlap
    ])
    scores = np.array([0.6, 0.9, 0.8, 0.3])
    assert suppress_overlaps(boxes, scores, 0.5, 0.9) == [1, 3]
    assert suppress_overlaps(boxes, scores, 1.0, 1.0) == [1, 2, 0, 3]
    assert suppress_overlaps(boxes, scores, 0.5) == [1, 2, 3]  # containment allowed by default
    assert suppress_overlaps(boxes[:0], scores[:0], 0.5, 0.9) == []
