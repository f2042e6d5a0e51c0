"""Tiled, multi-scale detection: the whole frame plus overlapping tiles near native resolution.

A detector sees its input size (300x300 for SSDLite): a 1920x1080 frame shrinks 3.6 times
before the network sees it, and a 120-px person becomes 33 px, below what it finds. Tiling
runs the detector on the whole frame (large persons) and on overlapping windows of about the
input's size in frame pixels (small persons), then merges the boxes into one set:

- tiles are for persons smaller than a tile: a box found in a tile taller than
  ``Tiling.max_box_share`` of the tile's height is left to the whole frame (on TUD-Campus x3,
  whose persons are taller than a tile, such boxes were mostly parts of persons), and boxes
  found in tiles need ``Tiling.tile_min_score`` (tiles see clutter up close);
- a box touching a tile edge that lies inside the frame is *cut*: it may be part of a person;
- overlapping boxes from different tiles, cut on the sides facing each other and agreeing
  across the cut, are joined into one box (a person larger than the overlap, whom no tile
  sees whole);
- all boxes are then suppressed greedily, whole boxes before cut ones and best score first:
  a box goes when its IoU with a kept box exceeds ``nms_iou``, or when more than
  ``max_containment`` of the smaller of the two lies inside the other (a second box on part
  of a person); a cut box goes as soon as ``cut_containment`` of it lies inside a kept box.

Everything here works on plain ``(x, y, w, h)`` boxes so that it can be checked on synthetic
boxes with known answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from base.boxes import intersection_matrix, iou_matrix

Window = tuple[int, int, int, int]  # x, y, w, h in frame pixels

OVERLAP = 0.25  # least share of a tile's side shared with its neighbour
MIN_EXCESS = 1.25  # tile only frames at least this many times a tile's width or height
TILE_MIN_SCORE = 0.6  # the score a box found in a tile needs (tiles see more clutter up close)
MAX_BOX_SHARE = 0.7  # a box found in a tile may be at most this share of the tile's height
EDGE_MARGIN = 2  # pixels from a tile edge within which a box counts as touching it


@dataclass(frozen=True, slots=True)
class Tiling:
    """When and how a detector tiles a frame.

    Attributes:
        enabled: False runs the whole frame only.
        tile_width: tile width in frame pixels, the height following the detector input's
            aspect ratio; None: the detector's own default (``Detector.tile_width``).
        overlap: least share of a tile's width (height) shared with its neighbour, in [0, 0.9].
        min_excess: frames tile only when wider or taller than this many tiles, >= 1.
        tile_min_score: the score a box found in a tile needs, in [0, 1], if higher than the
            caller's min score; the whole frame's boxes need only the caller's.
        max_box_share: boxes found in a tile taller than this share of its height are dropped,
            in (0, 1]: persons that tall are the whole frame's to find.
    """

    enabled: bool = True
    tile_width: int | None = None
    overlap: float = OVERLAP
    min_excess: float = MIN_EXCESS
    tile_min_score: float = TILE_MIN_SCORE
    max_box_share: float = MAX_BOX_SHARE

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ValueError: a value out of range; the message names it.
        """
        if self.tile_width is not None and self.tile_width < 16:
            raise ValueError(f"tile_width must be at least 16 pixels, got {self.tile_width}")
        if not 0.0 <= self.overlap <= 0.9:
            raise ValueError(f"overlap must be in [0, 0.9], got {self.overlap}")
        if self.min_excess < 1.0:
            raise ValueError(f"min_excess must be >= 1, got {self.min_excess}")
        if not 0.0 <= self.tile_min_score <= 1.0:
            raise ValueError(f"tile_min_score must be in [0, 1], got {self.tile_min_score}")
        if not 0.0 < self.max_box_share <= 1.0:
            raise ValueError(f"max_box_share must be in (0, 1], got {self.max_box_share}")

    def tile_size(self, input_size: tuple[int, int], default_width: int | None = None) -> tuple[int, int]:
        """Return the (width, height) of a tile for a detector of ``input_size`` (width, height).

        The width is ``tile_width``, else ``default_width``, else the input's (native resolution).
        """
        width = self.tile_width or default_width or input_size[0]
        return width, max(1, round(width * input_size[1] / input_size[0]))

    def windows(self, width: int, height: int, input_size: tuple[int, int] | None,
                default_width: int | None = None) -> list[Window]:
        """Return the windows a ``width`` x ``height`` frame is detected in, the whole frame first.

        Tiles (``tile_size``) are added only when tiling is enabled, the detector has an input
        size, and the frame is at least ``min_excess`` tiles wide or high.
        """
        whole = (0, 0, width, height)
        if not self.enabled or input_size is None:
            return [whole]
        tile_w, tile_h = self.tile_size(input_size, default_width)
        if width < self.min_excess * tile_w and height < self.min_excess * tile_h:
            return [whole]
        return [whole, *tile_windows(width, height, tile_w, tile_h, self.overlap)]


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    """Return evenly spread tile starts covering ``length`` with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    step = max(1.0, tile * (1.0 - overlap))
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_windows(width: int, height: int, tile_w: int, tile_h: int, overlap: float) -> list[Window]:
    """Return the tiles covering a frame, row by row, each at most ``tile_w`` x ``tile_h``.

    Neighbouring tiles share at least ``overlap`` of the tile's side; tiles are spread evenly,
    so the first starts at 0 and the last ends at the frame's edge.
    """
    columns, rows = _starts(width, tile_w, overlap), _starts(height, tile_h, overlap)
    return [(x, y, min(tile_w, width), min(tile_h, height)) for y in rows for x in columns]


def cut_sides(boxes: NDArray[np.floating], window: Window, frame_size: tuple[int, int],
              margin: float = EDGE_MARGIN) -> NDArray[np.bool_]:
    """Return which sides (left, top, right, bottom) of each box a tile edge may have cut.

    Args:
        boxes: (N, 4) ``(x, y, w, h)`` boxes in frame pixels, found in ``window``.
        window: the tile they were found in.
        frame_size: (width, height) of the frame; the frame's own edges cut nothing.
        margin: how close to a tile edge a box side must come to count as touching it.

    Returns:
        (N, 4) bool array.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = window
    width, height = frame_size
    inner = np.array([x > 0, y > 0, x + w < width, y + h < height])
    touches = np.stack([boxes[:, 0] <= x + margin, boxes[:, 1] <= y + margin,
                        boxes[:, 0] + boxes[:, 2] >= x + w - margin,
                        boxes[:, 1] + boxes[:, 3] >= y + h - margin], axis=1)
    return touches & inner[None, :]


def _interval_iou(a0: float, a1: float, b0: float, b1: float) -> float:
    """Return the IoU of the intervals [a0, a1] and [b0, b1]."""
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else 0.0


def join_cut_boxes(boxes: NDArray[np.floating], cut: NDArray[np.bool_], tiles: NDArray[np.integer],
                   min_agreement: float = 0.5) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[list[int]]]:
    """Join cut boxes from different tiles that meet at the cut into one box each.

    Two boxes join when they come from different tiles, overlap, are cut on the sides facing
    each other, and their extents across the cut agree (interval IoU >= ``min_agreement``):
    the two parts of a person cut by the tiles' edges. Joining is transitive (a person over
    four tiles gives one box).

    Args:
        boxes: (N, 4) ``(x, y, w, h)`` boxes in frame pixels.
        cut: (N, 4) sides cut, as from ``cut_sides``.
        tiles: (N,) the window each box came from.

    Returns:
        The joined boxes (M, 4) (each the union of its parts), whether each is still cut on
        a side none of its parts saw whole (M, 4), and the indices of each one's parts.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    overlapping = intersection_matrix(boxes, boxes) > 0
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if tiles[i] == tiles[j] or not overlapping[i, j] or not (cut[i].any() and cut[j].any()):
                continue
            if _meet_at_cut(boxes[i], cut[i], boxes[j], cut[j], min_agreement):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    parts = sorted(groups.values())
    joined = np.zeros((len(parts), 4))
    still_cut = np.zeros((len(parts), 4), dtype=bool)
    for k, members in enumerate(parts):
        corners = np.concatenate([boxes[members, :2], boxes[members, :2] + boxes[members, 2:]], axis=1)
        left, top = corners[:, 0].min(), corners[:, 1].min()
        right, bottom = corners[:, 2].max(), corners[:, 3].max()
        joined[k] = (left, top, right - left, bottom - top)
        extreme = np.stack([corners[:, 0] <= left, corners[:, 1] <= top,
                            corners[:, 2] >= right, corners[:, 3] >= bottom], axis=1)
        # A side stays cut when every part reaching it was cut there.
        still_cut[k] = np.all(cut[members] | ~extreme, axis=0)
    return joined, still_cut, parts


def _meet_at_cut(a: NDArray[np.float64], cut_a: NDArray[np.bool_], b: NDArray[np.float64],
                 cut_b: NDArray[np.bool_], min_agreement: float) -> bool:
    """Return whether overlapping boxes ``a`` and ``b`` look like two parts of one box cut between them.

    One must be cut on the side facing the other, the other cut on the opposite side (the
    left part of a person is cut on its right, the right part on its left), each reaching
    past the other's cut, and their extents across the cut must agree.
    """
    a_right, a_bottom, b_right, b_bottom = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]

    def facing(near: int, far: int, a0: float, a1: float, b0: float, b1: float) -> bool:
        if (a0, a1) == (b0, b1):
            return False
        return bool((cut_a[far] and cut_b[near] and a0 <= b0 and a1 <= b1)
                    or (cut_b[far] and cut_a[near] and b0 <= a0 and b1 <= a1))

    horizontal = facing(0, 2, a[0], a_right, b[0], b_right)
    vertical = facing(1, 3, a[1], a_bottom, b[1], b_bottom)
    return bool((horizontal and _interval_iou(a[1], a_bottom, b[1], b_bottom) >= min_agreement)
                or (vertical and _interval_iou(a[0], a_right, b[0], b_right) >= min_agreement))


def merge_tiles(boxes: NDArray[np.floating], scores: NDArray[np.floating], cut: NDArray[np.bool_],
                tiles: NDArray[np.integer], *, nms_iou: float = 0.5, max_containment: float = 0.9,
                cut_containment: float = 0.6) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Merge the boxes found in all windows of one frame into one box per person.

    Args:
        boxes: (N, 4) ``(x, y, w, h)`` boxes in frame pixels.
        scores: (N,) their scores.
        cut: (N, 4) sides a tile edge cut (``cut_sides``); all False for whole-frame boxes.
        tiles: (N,) the window each box came from.
        nms_iou: drop a box whose IoU with a kept box exceeds this.
        max_containment: drop a box when more than this share of the smaller of it and a
            kept box lies inside the other.
        cut_containment: drop a still-cut box when more than this share of it lies inside a
            kept box.

    Returns:
        The kept (M, 4) boxes and their (M,) scores, whole boxes first, each best score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    cut = np.asarray(cut, dtype=bool).reshape(-1, 4)
    joined, still_cut, parts = join_cut_boxes(boxes, cut, np.asarray(tiles).reshape(-1))
    joined_scores = np.array([scores[p].max() for p in parts])
    is_cut = np.asarray(still_cut.any(axis=1), dtype=bool)
    order = np.lexsort((-joined_scores, is_cut))  # whole boxes first, then best score first
    inter = intersection_matrix(joined, joined)
    iou = iou_matrix(joined, joined)
    area = joined[:, 2] * joined[:, 3]
    smaller = np.minimum(area[:, None], area[None, :])
    contained = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    inside = np.divide(inter, area[:, None], out=np.zeros_like(inter), where=area[:, None] > 0)
    redundant = np.asarray((iou > nms_iou) | (contained > max_containment)
                           | (is_cut[:, None] & (inside > cut_containment)), dtype=bool)
    keep: list[int] = []
    for i in order.tolist():
        if not redundant[i, keep].any():
            keep.append(i)
    return joined[keep], joined_scores[keep]


def window_boxes(found: Sequence[Sequence[tuple[int, int, int, int, float]]], windows: Sequence[Window],
                 frame_size: tuple[int, int]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64]]:
    """Gather per-window ``(x, y, w, h, score)`` boxes (window pixels) into frame-pixel arrays.

    Returns:
        boxes (N, 4), scores (N,), cut sides (N, 4) and window indices (N,), as ``merge_tiles`` takes.
    """
    boxes, scores, cut, tiles = [], [], [], []
    for index, (window, rows) in enumerate(zip(windows, found)):
        if not rows:
            continue
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        shifted = array[:, :4] + np.array([window[0], window[1], 0, 0])
        boxes.append(shifted)
        scores.append(array[:, 4])
        cut.append(cut_sides(shifted, window, frame_size))
        tiles.append(np.full(len(array), index))
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4), bool), np.zeros(0, np.int64)
    return (np.concatenate(boxes), np.concatenate(scores), np.concatenate(cut),
            np.concatenate(tiles).astype(np.int64))
