"""The detector interface: BGR images in, person boxes in pixels out."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from base.images import BGRImage, check_bgr_image
from base.lifecycle import LazyModel
from detector.tiling import Tiling, merge_tiles, window_boxes

MIN_SCORE = 0.5  # the confidence a person box needs unless the detector or the caller says otherwise


@dataclass(frozen=True, slots=True)
class Detection:
    """A person box in pixels of the image it was found in, clipped to that image."""

    x: int
    y: int
    w: int
    h: int
    score: float

    def as_list(self) -> list[int]:
        """Return the box as ``[x, y, w, h]``."""
        return [self.x, self.y, self.w, self.h]


class Detector(LazyModel):
    """Finds persons in images; ``load`` is lazy and idempotent.

    Subclasses set ``model_id`` (stable, changes whenever the boxes would), ``input_size``,
    ``min_score`` and ``tile_width``, and implement ``_load`` and ``_detect``; this class
    validates inputs, tiles frames larger than the tiles (``detector.tiling``), merges the
    tiles' boxes, sorts and checks the results.

    Args:
        tiling: when and how to tile large frames; by default automatically, tiles of
            ``tile_width``. ``Tiling(enabled=False)``: the whole frame only.
    """

    model_id: str
    input_size: tuple[int, int] | None = None  # (width, height) the network sees; None: no network
    min_score: float = MIN_SCORE  # the score a box needs when the caller names none
    tile_width: int | None = None  # tiles' width in frame pixels unless tiling says; None: the input's

    def __init__(self, tiling: Tiling | None = None) -> None:
        super().__init__()
        self.tiling = tiling if tiling is not None else Tiling()

    def detect(self, image: BGRImage, min_score: float | None = None, *,
               tiles: bool = True) -> list[Detection]:
        """Find persons in one image.

        Args:
            image: (H, W, 3) uint8 BGR array.
            min_score: keep boxes scoring at least this, in [0, 1] (None: the detector's
                ``min_score``); a box found in a tile needs ``tiling.tile_min_score`` too, and
                is dropped if taller than ``tiling.max_box_share`` of the tile.
            tiles: False looks at the whole image only, whatever ``tiling`` says.

        Returns:
            The boxes, best score first.

        Raises:
            TypeError: ``image`` is not an (H, W, 3) uint8 array.
            ValueError: ``image`` is empty or ``min_score`` is outside [0, 1].
        """
        return self.detect_batch([image], min_score, tiles=tiles)[0]

    def windows(self, width: int, height: int, *, tiles: bool = True) -> list[tuple[int, int, int, int]]:
        """Return the ``(x, y, w, h)`` windows a ``width`` x ``height`` image is detected in, whole first."""
        if not tiles:
            return [(0, 0, width, height)]
        return self.tiling.windows(width, height, self.input_size, self.tile_width)

    def detect_batch(self, images: Sequence[BGRImage], min_score: float | None = None, *,
                     tiles: bool = True) -> list[list[Detection]]:
        """Find persons in several images (any sizes) in as few model calls as possible.

        Each image is looked at whole and, when ``tiling`` says so for its size, in
        overlapping tiles too; the boxes of all its windows are merged into one per person.

        Args:
            images: (H, W, 3) uint8 BGR arrays.
            min_score: keep boxes scoring at least this, in [0, 1] (None: the detector's
                ``min_score``); boxes found in tiles need ``tiling.tile_min_score`` too.
            tiles: False looks at whole images only, whatever ``tiling`` says.

        Returns:
            One list per image, in input order, each best score first.

        Raises:
            TypeError: an image is not an (H, W, 3) uint8 array.
            ValueError: an image is empty or ``min_score`` is outside [0, 1].
        """
        for i, image in enumerate(images):
            check_bgr_image(image, f"image {i}")
        if min_score is None:
            min_score = self.min_score
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if len(images) == 0:
            return []
        self.load()
        windows = [self.windows(image.shape[1], image.shape[0], tiles=tiles) for image in images]
        crops = [image[y:y + h, x:x + w] for image, own in zip(images, windows) for x, y, w, h in own]
        found = self._detect(crops, min_score)
        assert len(found) == len(crops), (len(found), len(crops))
        results: list[list[Detection]] = []
        start = 0
        for image, own in zip(images, windows):
            parts = found[start:start + len(own)]
            start += len(own)
            if len(own) > 1:
                tile_score = max(min_score, self.tiling.tile_min_score)
                parts = [parts[0]] + [
                    [d for d in part if d.score >= tile_score and d.h <= self.tiling.max_box_share * h]
                    for part, (_, _, _, h) in zip(parts[1:], own[1:])]
            results.append(parts[0] if len(own) == 1 else
                           _merge(parts, own, (image.shape[1], image.shape[0])))
        for image, boxes in zip(images, results):
            height, width = image.shape[:2]
            assert all(d.x >= 0 and d.y >= 0 and d.w > 0 and d.h > 0
                       and d.x + d.w <= width and d.y + d.h <= height
                       and d.score >= min_score for d in boxes), boxes
        return [sorted(boxes, key=lambda d: d.score, reverse=True) for boxes in results]

    @abc.abstractmethod
    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Return clipped boxes scoring at least ``min_score`` for validated, non-empty images."""


def _merge(found: Sequence[Sequence[Detection]], windows: Sequence[tuple[int, int, int, int]],
           frame_size: tuple[int, int]) -> list[Detection]:
    """Merge the boxes found in each window of one frame (``detector.tiling.merge_tiles``)."""
    boxes, scores, cut, tiles = window_boxes(
        [[(d.x, d.y, d.w, d.h, d.score) for d in part] for part in found], windows, frame_size)
    kept, kept_scores = merge_tiles(boxes, scores, cut, tiles)
    width, height = frame_size
    merged = []
    for (x, y, w, h), score in zip(np.rint(kept).astype(np.int64).tolist(), kept_scores.tolist()):
        left, top = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
        merged.append(Detection(left, top, max(1, min(x + w, width) - left),
                                max(1, min(y + h, height) - top), float(score)))
    return merged
