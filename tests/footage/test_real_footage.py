"""analyse_video on real CCTV footage with the real detector and default embedder.

Needs ../shared/data beside the project; skipped when it is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.base import Detection
from detector.evaluation import MatchCounts, match_frame, read_mot_boxes
from detector.pedestrian_adas import DEFAULT_ADAS_PATH
from detector.registry import build_detector
from embedder.registry import build_embedder, default_embedder_spec
from footage.analysis import analyse_video
from footage.sampling import sample_indices
from footage.settings import FootageSettings
from tests.conftest import SHARED_DATA

FOOTAGE = SHARED_DATA / "footage"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not FOOTAGE.is_dir(),
                       reason=f"footage not found at {FOOTAGE} (needs ../shared/data)"),
]


# Measured on TUD-Campus (71 frames at 25 fps, 6 analysed at 2 fps), persons >= 50 px: SSDLite
# 20 crops kept, recall 0.67, precision 1.00, 3 tracks; pedestrian-adas recall 0.60, precision
# 0.72 (its boxes are wider than TUD's tight ones, and it boxes people behind the glass, whom
# the ground truth leaves out). Floors leave margin.
@pytest.mark.parametrize(("detector", "min_recall", "min_precision"), [
    ("ssdlite", 0.5, 0.8),
    pytest.param("pedestrian-adas", 0.5, 0.6, marks=pytest.mark.skipif(
        not DEFAULT_ADAS_PATH.is_dir(), reason=f"no pedestrian-detection-adas-0002 at {DEFAULT_ADAS_PATH}")),
])
def test_tud_campus_at_default_settings(detector: str, min_recall: float, min_precision: float) -> None:
    settings = FootageSettings()
    embedder = build_embedder(default_embedder_spec())
    analysis = analyse_video(FOOTAGE / "tud-campus.mp4", settings, build_detector(detector), embedder)
    assert (analysis.frames_read, analysis.frames_analysed) == (71, 6)
    truth = read_mot_boxes(FOOTAGE / "tud-campus.gt.txt")
    counts = MatchCounts()
    for frame in sample_indices(analysis.fps, settings.analysis_fps, analysis.frames_read):
        found = [Detection(*o.bbox, o.quality.score) for o in analysis.observations
                 if o.frame == frame]
        counts += match_frame(found, truth.get(frame + 1, []), iou_threshold=0.5, min_height=50)
    assert counts.recall >= min_recall and counts.precision >= min_precision, counts
    assert 2 <= len(analysis.tracks) <= 8
    for track in analysis.tracks:
        assert track.member_embeddings.shape[1] == embedder.dim
        assert np.linalg.norm(track.embedding) == pytest.approx(1.0, rel=1e-4)
        assert 1 <= len(track.best_crops) <= settings.best_crops
