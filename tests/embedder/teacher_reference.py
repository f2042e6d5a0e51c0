"""The fixed image and the shared teacher networks that the recorded reference outputs are of."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "teacher_reference.json"
TEACHERS = {
    "retail-0277": "intel-person-reidentification-retail-0277/person-reidentification-retail-0277.xml",
    "retail-0286": "intel-person-reidentification-retail-0286/person-reidentification-retail-0286.xml",
    "osnet_x0_25_msmt17": "osnet_x0_25_msmt17.onnx",
}


def fixed_person_image() -> np.ndarray:
    """Return a seeded 256x128 BGR person-like image: a head, a red top and blue trousers on noise."""
    rng = np.random.default_rng(2026)
    image = rng.integers(90, 160, size=(256, 128, 3)).astype(np.uint8)
    cv2.ellipse(image, (64, 36), (16, 20), 0, 0, 360, (120, 160, 210), -1)
    cv2.rectangle(image, (36, 58), (92, 140), (40, 40, 200), -1)
    cv2.rectangle(image, (42, 140), (86, 240), (140, 60, 30), -1)
    return image
