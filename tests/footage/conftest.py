"""Fixtures for footage tests: synthetic videos, the colour-blob detector, the fake embedder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from footage.analysis import VideoAnalysis
from footage.settings import FootageSettings
from tests.conftest import ThumbnailEmbedder
from tests.footage.synthetic import ColourDetector, Walker, write_video

# Two walkers in different rows: the first enters from the left edge in frame 0 and leaves on
# the right after frame 39; the second is in view, walking left, in frames 20-59.
WALKERS = (Walker(pattern=1, first=0, last=39, x=-20, y=30, dx=8),
           Walker(pattern=2, first=20, last=59, x=280, y=130, dx=-6))
FRAMES = 70
SETTINGS = dataclasses.replace(FootageSettings(), analysis_fps=5.0)  # every 2nd frame at 10 fps


def plain(value: Any) -> Any:
    """Turn dataclasses, arrays and tuples into dicts and lists that compare with ==."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def without_timing(analysis: VideoAnalysis) -> dict[str, Any]:
    """Return the analysis as plain data, without its wall and CPU times."""
    timing = {"seconds", "cpu_seconds", "stage_seconds", "stage_cpu_seconds"}
    return {k: v for k, v in plain(analysis).items() if k not in timing}


@pytest.fixture
def two_walkers(tmp_path: Path) -> Path:
    """Return a 70-frame, 10 fps MJPG video of ``WALKERS``."""
    return write_video(tmp_path / "two_walkers.avi", WALKERS, FRAMES)


@pytest.fixture
def colour_detector() -> ColourDetector:
    return ColourDetector()


@pytest.fixture
def thumbnail_embedder() -> ThumbnailEmbedder:
    return ThumbnailEmbedder()
