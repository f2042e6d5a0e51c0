"""Detectors by name, built from plain keyword arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from base.plugins import factory_at
from detector.base import Detector
from detector.ssdlite import SSDLitePersonDetector
from detector.whole_image import WholeImageDetector

DEFAULT_DETECTOR = "ssdlite"

DETECTORS: dict[str, Callable[..., Detector]] = {
    "ssdlite": SSDLitePersonDetector,
    "none": WholeImageDetector,
}


def build_detector(name: str = DEFAULT_DETECTOR, **kwargs: Any) -> Detector:
    """Build an unloaded detector by name, or from a ``module:factory`` path (plug-ins, tests).

    Args:
        name: one of ``DETECTORS``: "ssdlite" (person detector) or "none" (whole image).
        **kwargs: passed to the detector's constructor.

    Returns:
        The detector; its model loads on first use or on ``load()``.

    Raises:
        KeyError: ``name`` is unknown; the message lists the known names.
    """
    factory = DETECTORS.get(name) or factory_at(name)
    if factory is None:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    return factory(**kwargs)
