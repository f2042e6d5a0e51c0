"""A cheap appearance descriptor for tracking: colour histograms of the upper and lower body."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage

HUE_BINS = 8
SATURATION_BINS = 4
VALUE_BINS = 8
DIM = 2 * (HUE_BINS * SATURATION_BINS + VALUE_BINS)
SIDE_MARGIN = 0.15  # share of the width left out on each side (mostly background)


def colour_descriptor(crop: BGRImage) -> NDArray[np.float32]:
    """Describe a person crop (H, W, 3) by colour, as a (DIM,) unit vector.

    The crop's central columns are split into upper and lower halves (clothing); each gets a
    hue-saturation histogram and a brightness histogram. Square roots of the normalized
    histograms make the cosine similarity of two descriptors their Bhattacharyya coefficient.
    """
    height, width = crop.shape[:2]
    margin = int(width * SIDE_MARGIN)
    hsv = cv2.cvtColor(crop[:, margin:width - margin or width], cv2.COLOR_BGR2HSV)
    parts = []
    for half in (hsv[:max(1, height // 2)], hsv[height // 2:] if height > 1 else hsv):
        hue_sat = cv2.calcHist([half], [0, 1], None, [HUE_BINS, SATURATION_BINS],
                               [0, 180, 0, 256]).ravel()
        value = cv2.calcHist([half], [2], None, [VALUE_BINS], [0, 256]).ravel()
        for histogram in (hue_sat, value):
            parts.append(np.sqrt(histogram / max(float(histogram.sum()), 1.0)))
    vector = np.concatenate(parts).astype(np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def colour_descriptors(frame: BGRImage, boxes: NDArray[np.integer]) -> NDArray[np.float32]:
    """Describe the crops of (N, 4) (x, y, w, h) ``boxes`` in ``frame``; returns (N, DIM)."""
    return np.stack([colour_descriptor(frame[y:y + h, x:x + w]) for x, y, w, h in boxes.tolist()]
                    ) if len(boxes) else np.zeros((0, DIM), dtype=np.float32)
