"""Index a real recording with the real models, then find a person in it by a crop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import pytest

from detector.registry import build_detector
from embedder.registry import build_embedder, default_embedder_spec
from footage.settings import FootageSettings
from gallery.db import make_engine, make_session_factory
from gallery.footage_indexing import index_footage
from gallery.service import Gallery
from tests.conftest import SHARED_DATA

VIDEO = SHARED_DATA / "footage" / "tud-campus.mp4"
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.data,
    pytest.mark.slow,  # indexes a real video with the shipped model
    pytest.mark.skipif(not VIDEO.is_file(), reason=f"real footage not found at {VIDEO} "
                                                   "(needs ../shared/data beside the project)"),
]


def test_index_then_search_by_a_crop_finds_the_person_when_and_where(data_dir, database_url) -> None:
    embedder = build_embedder(default_embedder_spec())
    gallery = Gallery(data_dir, embedder, build_detector("none"), link_threshold=1.0)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    summary = index_footage(sessions, gallery, [VIDEO], detector_spec="ssdlite",
                            embedder_spec=default_embedder_spec(), settings=FootageSettings(analysis_fps=5.0),
                            camera="campus", start=START, workers=1, show_progress=False)
    assert summary.videos_indexed == 1 and summary.tracks >= 2

    capture = cv2.VideoCapture(str(VIDEO))
    ok, first = capture.read()                      # ground truth: person 1 at (399, 182, 121, 229)
    capture.release()
    assert ok
    with sessions() as session:
        (result,) = gallery.search(session, first[182:411, 399:520], top_k=1, threshold=0.0).results
        best = result.sightings[0]
        assert best.camera == "campus" and best.score > 0.7
        assert START <= best.start <= START + timedelta(seconds=1)  # person 1 is in view from frame 1
        assert best.end > best.start
    engine.dispose()
