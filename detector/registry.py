"""Detectors by name, built from plain keyword arguments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from base.inference import check_precision
from base.plugins import factory_at
from detector.base import Detector
from detector.pedestrian_adas import DEFAULT_ADAS_PATH, PedestrianAdasDetector, adas_network_file
from detector.ssdlite import SSDLitePersonDetector
from detector.tiling import Tiling
from detector.whole_image import WholeImageDetector

log = logging.getLogger(__name__)

DEFAULT_DETECTOR = "auto"

DETECTORS: dict[str, Callable[..., Detector]] = {
    "pedestrian-adas": PedestrianAdasDetector,
    "ssdlite": SSDLitePersonDetector,
    "none": WholeImageDetector,
}


def build_detector(name: str = DEFAULT_DETECTOR, *, tiles: bool = True, tile_size: int | None = None,
                   model_path: str | Path | None = None, precision: str = "auto", **kwargs: Any) -> Detector:
    """Build an unloaded detector by name, or from a ``module:factory`` path (plug-ins, tests).

    Args:
        name: one of ``DETECTORS`` ("pedestrian-adas": Intel's pedestrian-detection-adas-0002
            run by OpenVINO, read from ``model_path``; "ssdlite": the SSDLite person detector
            from its wheel; "none": whole images), or "auto": pedestrian-adas when its files
            are at ``model_path``, else ssdlite.
        tiles: False looks at whole frames only; True tiles frames larger than the detector's
            input (``detector.tiling``).
        tile_size: tile width in frame pixels (None: the detector's own, ``Detector.tile_width``:
            its input width for pedestrian-adas, twice it for ssdlite).
        model_path: the pedestrian-adas IR (``.xml`` or its folder); None: the shared models
            folder beside the project.
        precision: pedestrian-adas's OpenVINO precision, ``auto``, ``f32`` or ``bf16``
            (``base.inference``); the others compute as they do (SSDLite in TensorFlow, float32).
        **kwargs: passed to the detector's constructor (a plug-in's factory).

    Returns:
        The detector; its model loads on first use or on ``load()``.

    Raises:
        KeyError: ``name`` is unknown; the message lists the known names.
        FileNotFoundError: "pedestrian-adas" without its files at ``model_path``.
        ValueError: a tile size below 16 pixels, an unknown precision, or a constructor's own refusal.
    """
    check_precision(precision)
    tiling = Tiling(enabled=tiles, tile_width=tile_size)
    if name == "auto":
        name = "pedestrian-adas" if _adas_present(model_path) else "ssdlite"
        log.info("detector auto: %s", name)
    if name == "pedestrian-adas":
        adas_network_file(Path(model_path) if model_path is not None else DEFAULT_ADAS_PATH)
        return PedestrianAdasDetector(model_path, tiling=tiling, precision=precision, **kwargs)
    if name in DETECTORS:
        return DETECTORS[name](tiling=tiling, **kwargs)
    factory = factory_at(name)
    if factory is None:
        raise KeyError(f"unknown detector {name!r}; known: auto, {', '.join(sorted(DETECTORS))}")
    detector = factory(**kwargs)  # a plug-in's factory needs no tiling argument
    detector.tiling = tiling
    return detector


def _adas_present(model_path: str | Path | None) -> bool:
    """Return whether the pedestrian-adas network can be found at ``model_path``."""
    try:
        adas_network_file(Path(model_path) if model_path is not None else DEFAULT_ADAS_PATH)
    except FileNotFoundError:
        return False
    return True
