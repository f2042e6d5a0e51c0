"""Axis-aligned boxes as (x, y, width, height) rows: overlaps and greedy suppression."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def intersection_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the (N, M) intersection areas of every (x, y, w, h) box in ``a`` (N, 4) with ``b`` (M, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    return np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)


def areas(boxes: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the (N,) areas of (x, y, w, h) boxes (N, 4)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 2] * boxes[:, 3]


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """Compute intersection over union of every (x, y, w, h) box in ``a`` (N, 4) with ``b`` (M, 4).

    Returns:
        (N, M) float64 array in [0, 1].
    """
    inter = intersection_matrix(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def suppress_overlaps(boxes: NDArray[np.floating], scores: NDArray[np.floating],
                      iou_limit: float, containment_limit: float = 1.0) -> list[int]:
    """Greedy non-maximum suppression of (x, y, w, h) boxes (N, 4) by IoU and by containment.

    A box is dropped when its IoU with a better kept box exceeds ``iou_limit``, or when the
    intersection covers more than ``containment_limit`` of the smaller of the two.

    Returns:
        Indices of the kept boxes, best score first.
    """
    inter = intersection_matrix(boxes, boxes)
    area = areas(boxes)
    union = area[:, None] + area[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    smaller = np.minimum(area[:, None], area[None, :])
    containment = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    keep: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable").tolist():
        if all(iou[i, j] <= iou_limit and containment[i, j] <= containment_limit for j in keep):
            keep.append(i)
    return keep
