"""Several videos analysed in spawned worker processes, each building its own models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedder.registry import SHIPPED_MODEL_DIR
from embedder.runtime_model import RuntimeEmbedder
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


class ThreadCountingDetector(ColourDetector):
    """The colour-blob detector, naming in its model id the threads it was limited to."""

    threads: int | None = None

    def limit_threads(self, threads: int) -> None:
        self.threads = threads

    @property  # type: ignore[override]
    def model_id(self) -> str:
        return f"colour-blobs-threads-{self.threads}"


def test_each_worker_limits_its_models_to_its_share_of_the_cores(tmp_path: Path) -> None:
    videos = [write_video(tmp_path / f"{n}.avi", WALKERS, FRAMES) for n in range(2)]
    outcomes = list(analyse_videos(videos, SETTINGS, detector="tests.footage.test_parallel:ThreadCountingDetector",
                                   embedder=EMBEDDER, workers=2, show_progress=False))
    share = max(1, (os.cpu_count() or 1) // 2)
    assert [o.analysis.detector_id for o in outcomes if o.analysis] == [f"colour-blobs-threads-{share}"] * 2


def test_a_runtime_embedder_limited_to_one_thread_runs_one_stream() -> None:
    _, embedder = build_models(DETECTOR, str(SHIPPED_MODEL_DIR), threads=1)
    assert isinstance(embedder, RuntimeEmbedder)
    embedder.load()
    assert embedder.streams == 1


def test_embedder_options_reach_the_embedder() -> None:
    _, embedder = build_models(DETECTOR, str(SHIPPED_MODEL_DIR), embedder_options={"precision": "f32"})
    assert isinstance(embedder, RuntimeEmbedder) and embedder.precision == "f32"


def test_models_are_built_from_names_or_factory_paths() -> None:
    detector, embedder = build_models(DETECTOR, EMBEDDER)
    assert (detector.model_id, embedder.model_id) == ("test-colour-blobs-v1", "test-thumbnail-v1")
    with pytest.raises(KeyError, match="unknown detector"):
        build_models("no-such-detector", EMBEDDER)
    with pytest.raises(KeyError, match="unknown embedder"):
        build_models(DETECTOR, "no-such-embedder")
