"""Tests for turning BGR crops into model input."""

from __future__ import annotations

import numpy as np

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
