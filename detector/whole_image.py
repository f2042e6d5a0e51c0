"""A detector that finds nothing, for stills that are already crops of one person."""

from __future__ import annotations

from collections.abc import Sequence

from base.images import BGRImage
from detector.base import Detection, Detector


class WholeImageDetector(Detector):
    """Finds no boxes, so that callers treat each whole image as one person."""

    model_id = "none"

    def _load(self) -> None:
        """Load nothing."""

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Return an empty list per image."""
        return [[] for _ in images]
