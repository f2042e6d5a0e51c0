"""Fixtures for detector tests: real images, never mocks of the model under test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from base.images import BGRImage
from detector.ssdlite import SSDLitePersonDetector


@pytest.fixture(scope="module")
def ssdlite() -> SSDLitePersonDetector:
    """Return the person detector, loaded once per test module."""
    detector = SSDLitePersonDetector()
    detector.load()
    return detector


@pytest.fixture(scope="session")
def astronaut() -> BGRImage:
    """Return scikit-image's astronaut (one person, 512x512) as BGR."""
    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
