"""Drawing numbered boxes."""

from __future__ import annotations

import numpy as np
import pytest

from detector.base import Detection
from detector.drawing import PALETTE, draw_detections

BOXES = [Detection(10, 40, 50, 100, 0.9), Detection(0, 0, 120, 30, 0.8),
         Detection(150, 140, 50, 60, 0.7)]  # the last two touch the image edges


def test_returns_a_drawn_copy_and_leaves_input_alone() -> None:
    image = np.full((200, 200, 3), 90, np.uint8)
    before = image.copy()
    drawn = draw_detections(image, BOXES)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert drawn is not image
    np.testing.assert_array_equal(image, before)
    assert tuple(drawn[90, 10]) == PALETTE[0]  # left edge of the first box
    assert not np.array_equal(drawn, image)


def test_no_detections_gives_an_equal_copy() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    drawn = draw_detections(image, [])
    assert drawn is not image
    np.testing.assert_array_equal(drawn, image)


def test_custom_labels_and_their_count() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    numbered = draw_detections(image, BOXES)
    named = draw_detections(image, BOXES, labels=["anna", "bo", "cy"])
    assert not np.array_equal(numbered, named)
    with pytest.raises(ValueError, match="2 labels for 3 detections"):
        draw_detections(image, BOXES, labels=["a", "b"])


def test_tags_stay_outside_the_boxes() -> None:
    image = np.full((200, 100, 3), 90, np.uint8)
    crop = draw_detections(image, [Detection(0, 0, 100, 200, 0.9)])  # no room above or below: a band
    band = crop.shape[0] - 200
    assert band > 0 and crop.shape[1] == 100
    np.testing.assert_array_equal(crop[band + 10:190 + band, 10:90], image[10:190, 10:90])  # the person uncovered
    top = draw_detections(image, [Detection(10, 0, 50, 60, 0.9)])  # tag below the box
    assert top.shape == image.shape and tuple(top[62, 12]) == PALETTE[0]


def test_rejects_non_bgr_images() -> None:
    with pytest.raises(TypeError, match=r"\(H, W, 3\) uint8"):
        draw_detections(np.zeros((20, 20), np.uint8), [])
