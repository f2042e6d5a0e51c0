"""Turning BGR crops into a model's input batch, shared by every Keras embedder."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from embedder.base import BGRImage


def to_model_input(images: Sequence[BGRImage], size: tuple[int, int]) -> NDArray[np.float32]:
    """Resize BGR uint8 images (bilinear) and stack them as RGB floats in 0..255.

    Args:
        images: (H, W, 3) uint8 BGR arrays of any sizes.
        size: (height, width) of the model input.

    Returns:
        An (N, height, width, 3) float32 RGB array with values in 0..255.
    """
    height, width = size
    batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.shape[:2] == (height, width):
            batch[i] = image
        else:
            batch[i] = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return batch[..., ::-1].astype(np.float32)
