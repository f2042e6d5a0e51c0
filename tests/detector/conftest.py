"""Fixtures for detector tests: real images, never mocks of the model under test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from base.images import BGRImage
from detector.pedestrian_adas import DEFAULT_ADAS_PATH, PedestrianAdasDetector
from detector.registry import DETECTORS
from detector.ssdlite import SSDLitePersonDetector

ADAS_MISSING = pytest.mark.skipif(
    not DEFAULT_ADAS_PATH.is_dir(),
    reason=f"pedestrian-detection-adas-0002 not found at {DEFAULT_ADAS_PATH} "
           "(needs ../shared/models beside the project)")
# Every registered detector name; pedestrian-adas skipped when its files are absent.
DETECTOR_NAMES = [pytest.param(name, marks=ADAS_MISSING) if name == "pedestrian-adas" else name
                  for name in sorted(DETECTORS)]


@pytest.fixture(scope="module")
def ssdlite() -> SSDLitePersonDetector:
    """Return the person detector, loaded once per test module."""
    detector = SSDLitePersonDetector()
    detector.load()
    return detector


@pytest.fixture(scope="module")
def adas() -> PedestrianAdasDetector:
    """Return pedestrian-detection-adas-0002, loaded once per test module (skipped when absent)."""
    if not DEFAULT_ADAS_PATH.is_dir():
        pytest.skip(f"pedestrian-detection-adas-0002 not found at {DEFAULT_ADAS_PATH} "
                    "(needs ../shared/models beside the project)")
    detector = PedestrianAdasDetector()
    detector.load()
    return detector


@pytest.fixture(scope="session")
def astronaut() -> BGRImage:
    """Return scikit-image's astronaut (one person, 512x512) as BGR."""
    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
