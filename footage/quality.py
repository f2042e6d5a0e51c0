"""Per-crop quality: size, sharpness, cut by the frame edge, detector score; a gate and a score."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from base.images import BGRImage
from detector.base import Detection

# Crops are resized to this (width, height) before measuring sharpness, so that the
# figure does not depend on the crop's size.
SHARPNESS_SIZE = (32, 64)


class DropReason(str, Enum):
    """Why a crop was not kept, checked in this order."""

    SMALL = "small"
    EDGE = "edge"
    BLURRED = "blurred"


@dataclass(frozen=True, slots=True)
class CropQuality:
    """Quality measures of one person crop.

    Attributes:
        height: box height in pixels of the frame.
        sharpness: variance of the Laplacian of the crop resized to ``SHARPNESS_SIZE``, grey.
        edge_cut: the box lies within the edge margin of the frame border.
        score: the detector's score in [0, 1].
        quality: score in (0, 1] for weighting: detector score x size x sharpness terms.
    """

    height: int
    sharpness: float
    edge_cut: bool
    score: float
    quality: float


def sharpness(crop: BGRImage) -> float:
    """Return the variance of the Laplacian of ``crop`` (H, W, 3) resized to ``SHARPNESS_SIZE``.

    Shrinking large crops (area averaging) and enlarging small ones (bilinear) to one size
    makes the figure comparable across crop sizes; blur and low contrast both lower it.
    """
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    interpolation = (cv2.INTER_AREA if grey.shape[0] > SHARPNESS_SIZE[1]
                     else cv2.INTER_LINEAR)
    small = cv2.resize(grey, SHARPNESS_SIZE, interpolation=interpolation)
    return float(cv2.Laplacian(small, cv2.CV_64F).var())


def measure(frame: BGRImage, detection: Detection, *, edge_margin: int,
            reference_height: int, reference_sharpness: float) -> CropQuality:
    """Measure the crop of ``detection`` in ``frame`` (H, W, 3).

    The quality score is ``score * min(1, height / reference_height)
    * min(1, sharpness / reference_sharpness)``, positive for any non-empty crop.
    """
    d = detection
    frame_height, frame_width = frame.shape[:2]
    edge_cut = (d.x <= edge_margin or d.y <= edge_margin
                or d.x + d.w >= frame_width - edge_margin
                or d.y + d.h >= frame_height - edge_margin)
    sharp = sharpness(frame[d.y:d.y + d.h, d.x:d.x + d.w])
    quality = (d.score * min(1.0, d.h / reference_height)
               * min(1.0, sharp / reference_sharpness))
    return CropQuality(height=d.h, sharpness=round(sharp, 3), edge_cut=edge_cut,
                       score=d.score, quality=float(np.clip(quality, 0.0, 1.0)))


def gate(quality: CropQuality, *, min_height: int, min_sharpness: float) -> DropReason | None:
    """Return why the crop is dropped, or None to keep it."""
    if quality.height < min_height:
        return DropReason.SMALL
    if quality.edge_cut:
        return DropReason.EDGE
    if quality.sharpness < min_sharpness:
        return DropReason.BLURRED
    return None
