"""Several videos analysed in spawned worker processes, each building its own models."""

from __future__ import annotations

from pathlib import Path

import pytest

from footage.analysis import analyse_video
from footage.parallel import analyse_videos, build_models
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import FRAMES, SETTINGS, WALKERS, without_timing
from tests.footage.synthetic import ColourDetector, Walker, write_video

DETECTOR = "tests.footage.synthetic:ColourDetector"
EMBEDDER = "tests.conftest:ThumbnailEmbedder"


def test_videos_run_in_parallel_and_match_the_in_process_result(tmp_path: Path) -> None:
    first = write_video(tmp_path / "first.avi", WALKERS, FRAMES)
    second = write_video(tmp_path / "second.avi", [Walker(6, 0, 30, 40, 100, dx=5)], 40)
    broken = tmp_path / "broken.avi"
    broken.write_text("not a video")
    outcomes = {o.path: o for o in analyse_videos([first, broken, second], SETTINGS,
                                                  detector=DETECTOR, embedder=EMBEDDER,
                                                  workers=2, show_progress=False)}
    assert set(outcomes) == {first, broken, second}
    assert outcomes[broken].analysis is None and "VideoError" in str(outcomes[broken].error)
    for path in (first, second):
        outcome = outcomes[path]
        assert outcome.error is None and outcome.analysis is not None
        expected = analyse_video(path, SETTINGS, ColourDetector(), ThumbnailEmbedder())
        assert without_timing(outcome.analysis) == without_timing(expected)


def test_models_are_built_from_names_or_factory_paths() -> None:
    detector, embedder = build_models(DETECTOR, EMBEDDER)
    assert (detector.model_id, embedder.model_id) == ("test-colour-blobs-v1", "test-thumbnail-v1")
    with pytest.raises(KeyError, match="unknown detector"):
        build_models("no-such-detector", EMBEDDER)
    with pytest.raises(KeyError, match="unknown embedder"):
        build_models(DETECTOR, "no-such-embedder")
