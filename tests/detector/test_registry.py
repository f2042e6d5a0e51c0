"""Building detectors by name."""

from __future__ import annotations

import pytest

from detector.registry import DEFAULT_DETECTOR, build_detector
from detector.ssdlite import SSDLitePersonDetector
from detector.whole_image import WholeImageDetector


def test_default_is_ssdlite_with_kwargs_passed() -> None:
    assert DEFAULT_DETECTOR == "ssdlite"
    detector = build_detector(min_height=50, batch_size=4)
    assert isinstance(detector, SSDLitePersonDetector)
    assert (detector.min_height, detector.batch_size) == (50, 4)


def test_none_is_whole_image() -> None:
    assert isinstance(build_detector("none"), WholeImageDetector)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(KeyError, match="unknown detector 'yolo'; known: none, ssdlite"):
        build_detector("yolo")


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        build_detector("ssdlite", batch_size=0)
    with pytest.raises(ValueError, match="nms_iou"):
        build_detector("ssdlite", nms_iou=1.5)
    with pytest.raises(TypeError):
        build_detector("none", min_height=50)
