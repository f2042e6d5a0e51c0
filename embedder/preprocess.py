"""Turning BGR crops into a model's input batch, shared by the Keras and OpenVINO embedders."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage


def to_model_input(images: Sequence[BGRImage], size: tuple[int, int],
                   center_crop: float = 1.0) -> NDArray[np.float32]:
    """Return ``resized_batch`` as RGB floats in 0..255: an (N, height, width, 3) float32 array."""
    return resized_batch(images, size, center_crop)[..., ::-1].astype(np.float32)


def resized_batch(images: Sequence[BGRImage], size: tuple[int, int],
                  center_crop: float = 1.0) -> NDArray[np.uint8]:
    """Keep the central ``center_crop`` of each BGR uint8 image's height and width, resize it
    (bilinear) and stack the results.

    Args:
        images: (H, W, 3) uint8 BGR arrays of any sizes.
        size: (height, width) of the model input.
        center_crop: the fraction of each side kept, in (0, 1]; 1 keeps the whole image.

    Returns:
        An (N, height, width, 3) uint8 BGR array.
    """
    if not 0.0 < center_crop <= 1.0:
        raise ValueError(f"center_crop must lie in (0, 1], got {center_crop}")
    height, width = size
    batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        if center_crop < 1.0:
            image = central_window(image, center_crop)
        if image.shape[:2] == (height, width):
            batch[i] = image
        else:
            batch[i] = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return batch


def central_window(image: BGRImage, fraction: float) -> BGRImage:
    """Return the central ``fraction`` of ``image``'s height and width (at least one pixel each)."""
    rows, cols = image.shape[:2]
    top = min(round(rows * (1.0 - fraction) / 2), (rows - 1) // 2)
    left = min(round(cols * (1.0 - fraction) / 2), (cols - 1) // 2)
    return image[top:rows - top, left:cols - left]
