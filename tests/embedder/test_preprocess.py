"""Tests for turning BGR crops into model input."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.preprocess import to_model_input


def test_resizes_to_height_by_width_and_swaps_to_rgb() -> None:
    bgr = np.zeros((40, 30, 3), dtype=np.uint8)
    bgr[..., 0] = 200  # blue
    bgr[..., 2] = 10  # red
    batch = to_model_input([bgr, bgr[:20]], (64, 32))
    assert batch.shape == (2, 64, 32, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[..., 0], 10.0)
    np.testing.assert_array_equal(batch[..., 1], 0.0)
    np.testing.assert_array_equal(batch[..., 2], 200.0)


def test_keeps_an_image_of_the_right_size_unchanged() -> None:
    bgr = np.random.default_rng(0).integers(0, 256, (8, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_model_input([bgr], (8, 4))[0], bgr[..., ::-1])


def test_an_empty_sequence_gives_an_empty_batch() -> None:
    assert to_model_input([], (8, 4)).shape == (0, 8, 4, 3)


def test_center_crop_keeps_the_central_fraction_before_resizing() -> None:
    bgr = np.full((20, 10, 3), 255, dtype=np.uint8)
    bgr[2:18, 1:9] = 7  # a 16 x 8 centre inside a white frame two rows and one column wide
    np.testing.assert_array_equal(to_model_input([bgr], (16, 8), center_crop=0.8)[0], 7.0)
    assert to_model_input([bgr], (16, 8))[0].max() == 255.0  # without the crop the frame shows


def test_center_crop_leaves_at_least_a_pixel_and_refuses_fractions_outside_0_1() -> None:
    assert to_model_input([np.zeros((1, 1, 3), np.uint8)], (4, 2), center_crop=0.1).shape == (1, 4, 2, 3)
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="center_crop"):
            to_model_input([np.zeros((4, 4, 3), np.uint8)], (4, 4), center_crop=fraction)
