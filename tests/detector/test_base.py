"""Boundary checks shared by all detectors, and the whole-image detector."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detector.base import Detection
from detector.registry import build_detector
from detector.whole_image import WholeImageDetector
from tests.detector.conftest import DETECTOR_NAMES


def test_detection_as_list_and_frozen() -> None:
    detection = Detection(1, 2, 3, 4, 0.9)
    assert detection.as_list() == [1, 2, 3, 4]
    with pytest.raises(dataclasses.FrozenInstanceError):
        detection.x = 5  # type: ignore[misc]  # writing a frozen field is what is tested


@pytest.mark.parametrize("name", DETECTOR_NAMES)
@pytest.mark.parametrize("bad", [
    np.zeros((32, 32), np.uint8),
    np.zeros((32, 32, 4), np.uint8),
    np.zeros((32, 32, 3), np.float32),
    np.zeros((1, 32, 32, 3), np.uint8),
    [[0, 0, 0]],
    None,
], ids=["gray", "bgra", "float32", "4d", "list", "none"])
def test_rejects_images_that_are_not_hwc3_uint8(name: str, bad: object) -> None:
    detector = build_detector(name)
    with pytest.raises(TypeError, match=r"\(H, W, 3\) uint8"):
        detector.detect(bad)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(TypeError, match="image 1 "):
        detector.detect_batch([np.zeros((8, 8, 3), np.uint8), bad])  # type: ignore[list-item]  # on purpose


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_rejects_empty_images_and_bad_scores(name: str) -> None:
    detector = build_detector(name)
    with pytest.raises(ValueError, match="empty"):
        detector.detect(np.zeros((0, 10, 3), np.uint8))
    for score in (-0.1, 1.5):
        with pytest.raises(ValueError, match="min_score"):
            detector.detect(np.zeros((10, 10, 3), np.uint8), min_score=score)


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_empty_batch_gives_empty_list(name: str) -> None:
    assert build_detector(name).detect_batch([]) == []


def test_whole_image_detector_finds_nothing(astronaut: np.ndarray) -> None:
    detector = WholeImageDetector()
    detector.load()
    detector.load()
    assert detector.model_id == "none"
    assert detector.detect(astronaut, min_score=0.0) == []
    assert detector.detect_batch([astronaut, astronaut[:100]]) == [[], []]
