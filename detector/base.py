"""The detector interface: BGR images in, person boxes in pixels out."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from base.images import BGRImage, check_bgr_image
from base.lifecycle import LazyModel

MIN_SCORE = 0.5  # the detector confidence a person box needs unless the caller says otherwise


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

    Subclasses set ``model_id`` (stable, changes whenever the boxes would) and implement
    ``_load`` and ``_detect``; this class validates inputs, sorts and checks the results.
    """

    model_id: str

    def detect(self, image: BGRImage, min_score: float = MIN_SCORE) -> list[Detection]:
        """Find persons in one image.

        Args:
            image: (H, W, 3) uint8 BGR array.
            min_score: keep boxes scoring at least this, in [0, 1].

        Returns:
            The boxes, best score first.

        Raises:
            TypeError: ``image`` is not an (H, W, 3) uint8 array.
            ValueError: ``image`` is empty or ``min_score`` is outside [0, 1].
        """
        return self.detect_batch([image], min_score)[0]

    def detect_batch(self, images: Sequence[BGRImage],
                     min_score: float = MIN_SCORE) -> list[list[Detection]]:
        """Find persons in several images (any sizes) in as few model calls as possible.

        Args:
            images: (H, W, 3) uint8 BGR arrays.
            min_score: keep boxes scoring at least this, in [0, 1].

        Returns:
            One list per image, in input order, each best score first.

        Raises:
            TypeError: an image is not an (H, W, 3) uint8 array.
            ValueError: an image is empty or ``min_score`` is outside [0, 1].
        """
        for i, image in enumerate(images):
            check_bgr_image(image, f"image {i}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if len(images) == 0:
            return []
        self.load()
        results = self._detect(images, min_score)
        assert len(results) == len(images), (len(results), len(images))
        for image, found in zip(images, results):
            height, width = image.shape[:2]
            assert all(d.x >= 0 and d.y >= 0 and d.w > 0 and d.h > 0
                       and d.x + d.w <= width and d.y + d.h <= height
                       and d.score >= min_score for d in found), found
        return [sorted(found, key=lambda d: d.score, reverse=True) for found in results]

    @abc.abstractmethod
    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Return clipped boxes scoring at least ``min_score`` for validated, non-empty images."""
