"""Crop quality measures, the keep-or-drop gate and the weighting score."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.base import Detection
from footage.quality import CropQuality, DropReason, gate, measure, sharpness
from tests.footage.synthetic import background, pattern

GATE = {"min_height": 50, "min_sharpness": 80.0}
MEASURE = {"edge_margin": 2, "reference_height": 128, "reference_sharpness": 400.0}


def scene_with(person: np.ndarray, x: int, y: int) -> np.ndarray:
    """Paste a person crop into the synthetic scene at (x, y)."""
    frame = background()
    frame[y:y + person.shape[0], x:x + person.shape[1]] = person
    return frame


def test_a_sharp_whole_large_person_is_kept() -> None:
    frame = scene_with(pattern(3, (40, 100)), 100, 60)
    quality = measure(frame, Detection(100, 60, 40, 100, 0.8), **MEASURE)
    assert (quality.height, quality.edge_cut, quality.score) == (100, False, 0.8)
    assert quality.sharpness > 400
    assert quality.quality == pytest.approx(0.8 * 100 / 128)
    assert gate(quality, **GATE) is None


@pytest.mark.parametrize(("box", "blur", "reason"), [
    (Detection(100, 60, 16, 40, 0.9), 0, DropReason.SMALL),
    (Detection(0, 60, 40, 100, 0.9), 0, DropReason.EDGE),
    (Detection(280, 60, 40, 100, 0.9), 0, DropReason.EDGE),
    (Detection(100, 139, 40, 100, 0.9), 0, DropReason.EDGE),
    (Detection(100, 60, 40, 100, 0.9), 4, DropReason.BLURRED),
])
def test_small_cut_and_blurred_crops_are_dropped_with_their_reason(
        box: Detection, blur: float, reason: DropReason) -> None:
    frame = scene_with(pattern(3, (box.w, box.h)), box.x, box.y)
    if blur:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    assert gate(measure(frame, box, **MEASURE), **GATE) is reason


def test_sharpness_hardly_depends_on_crop_size_and_falls_with_blur() -> None:
    small, large = pattern(5, (32, 80)), pattern(5, (96, 240))
    assert 0.5 < sharpness(small) / sharpness(large) < 2.0
    assert sharpness(cv2.GaussianBlur(large, (0, 0), 6)) < 0.1 * sharpness(large)


def test_quality_falls_with_score_size_and_sharpness() -> None:
    frame = scene_with(pattern(3, (40, 100)), 100, 60)
    base = measure(frame, Detection(100, 60, 40, 100, 0.9), **MEASURE)
    lower_score = measure(frame, Detection(100, 60, 40, 100, 0.5), **MEASURE)
    smaller = measure(frame, Detection(100, 60, 40, 60, 0.9), **MEASURE)
    blurred = measure(cv2.GaussianBlur(frame, (0, 0), 3), Detection(100, 60, 40, 100, 0.9),
                      **MEASURE)
    for worse in (lower_score, smaller, blurred):
        assert isinstance(worse, CropQuality) and 0 < worse.quality < base.quality <= 1
