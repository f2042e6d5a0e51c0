"""Videos analysed on a real local Ray cluster: the local analysis (synthetic and real footage),
models loaded once per worker, unreadable files named, a worker killed mid-video."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from detector.registry import DEFAULT_DETECTOR, build_detector
from embedder.registry import build_embedder, default_embedder_spec
from footage.analysis import analyse_video
from footage.cluster import ClusterError, analyse_videos_on_ray
from footage.settings import FootageSettings
from tests.conftest import SHARED_DATA, ThumbnailEmbedder
from tests.footage.conftest import FRAMES, SETTINGS, WALKERS, plain, without_timing
from tests.footage.synthetic import ColourDetector, Walker, write_video
from tests.ray_cluster import LocalCluster, SlowColourDetector, worker_pids

pytestmark = pytest.mark.slow  # a Ray cluster starts once per session (~20 s), each run connects anew

SLOW = "tests.ray_cluster:SlowColourDetector"
EMBEDDER = "tests.conftest:ThumbnailEmbedder"


def videos(folder: Path, count: int) -> list[Path]:
    """Write ``count`` different short videos of walkers."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [write_video(folder / "two_walkers.avi", WALKERS, FRAMES)]
    for k in range(1, count):
        walkers = [Walker(10 + k, 0, 30, 20 + 9 * k, 100, dx=5), Walker(30 + k, 5, 35, 250, 20 + 7 * k, dx=-4)]
        made.append(write_video(folder / f"clip{k}.avi", walkers, 40))
    return made


def local(path: Path) -> dict:
    return without_timing(analyse_video(path, SETTINGS, ColourDetector(), ThumbnailEmbedder()))


def test_ray_gives_the_local_analysis_and_loads_models_once_per_worker(
        ray_cluster: LocalCluster, ray_markers: Path, tmp_path: Path) -> None:
    good = videos(tmp_path / "recordings", 4)
    broken = tmp_path / "recordings" / "broken.avi"
    broken.write_text("not a video")
    missing = tmp_path / "elsewhere" / "not-mounted.avi"  # as on a node without the share
    outcomes = {o.path: o for o in analyse_videos_on_ray(
        [*good, broken, missing], SETTINGS, address=ray_cluster.address, detector=SLOW, embedder=EMBEDDER,
        show_progress=False)}
    assert set(outcomes) == {*good, broken, missing}
    for path in good:
        analysis = outcomes[path].analysis
        assert outcomes[path].error is None and analysis is not None
        assert without_timing(analysis) == local(path)
    assert outcomes[broken].analysis is None and "VideoError" in str(outcomes[broken].error)
    error = str(outcomes[missing].error)
    assert error.startswith("UnreadableVideo: worker ") and f"cannot read {missing} (no such file)" in error
    assert "at the driver's path (mount the share there)" in error
    loads = sorted(ray_markers.glob("load-*"))
    analysed_in = set(worker_pids(ray_markers))
    assert len(loads) == len(analysed_in) == 2, "one model load per worker, one worker per CPU"
    assert os.getpid() not in analysed_in


def test_a_worker_killed_mid_video_loses_nothing(ray_cluster: LocalCluster, ray_markers: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = videos(tmp_path / "recordings", 4)
    killed: list[int] = []

    def kill_the_first_worker() -> None:
        deadline = time.monotonic() + 60
        while not worker_pids(ray_markers) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(SlowColourDetector.delay * 5)  # a few frames into its video
        killed.append(worker_pids(ray_markers)[0])
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    try:
        outcomes = {o.path: o for o in analyse_videos_on_ray(
            paths, SETTINGS, address=ray_cluster.address, detector=SLOW, embedder=EMBEDDER, workers=2,
            show_progress=False)}
    finally:
        killer.join()
    assert killed and killed[0] != os.getpid()
    assert set(outcomes) == set(paths), "every video has one outcome"
    for path in paths:
        analysis = outcomes[path].analysis
        assert outcomes[path].error is None and analysis is not None, outcomes[path].error
        assert without_timing(analysis) == local(path)
    assert len(list(ray_markers.glob("load-*"))) == 3, "the lost worker was replaced once"


def test_models_that_cannot_be_built_stop_the_run(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    (path,) = videos(tmp_path, 1)
    with pytest.raises(ClusterError, match=r"a Ray worker cannot build the models: .*unknown detector 'no-such'"):
        list(analyse_videos_on_ray([path], SETTINGS, address=ray_cluster.address, detector="no-such",
                                   embedder=EMBEDDER, show_progress=False))


def test_a_worker_whose_detector_differs_from_the_drivers_is_refused(ray_cluster: LocalCluster,
                                                                    tmp_path: Path) -> None:
    (path,) = videos(tmp_path, 1)
    (outcome,) = analyse_videos_on_ray([path], SETTINGS, address=ray_cluster.address,
                                       detector="tests.ray_cluster:DriftedColourDetector", embedder=EMBEDDER,
                                       show_progress=False)
    assert outcome.analysis is None
    assert "detected with colour-blobs-of-another-version, the driver's settings with test-colour-blobs-v1" in str(
        outcome.error)
    assert "install the same models at the same paths on every node" in str(outcome.error)


def test_an_address_nobody_answers_at_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        began = time.monotonic()
        with pytest.raises(ClusterError, match=f"no Ray cluster answers at {address}"):
            list(analyse_videos_on_ray([tmp_path / "a.avi"], SETTINGS, address=address, detector=SLOW,
                                       embedder=EMBEDDER))
    assert time.monotonic() - began < 5


FOOTAGE = SHARED_DATA / "footage"


@pytest.mark.data
@pytest.mark.skipif(not FOOTAGE.is_dir(), reason=f"footage not found at {FOOTAGE} (needs ../shared/data)")
def test_real_footage_on_ray_matches_the_local_analysis(ray_cluster: LocalCluster) -> None:
    video = FOOTAGE / "tud-campus.mp4"
    settings = FootageSettings()
    spec = default_embedder_spec()
    (outcome,) = analyse_videos_on_ray([video], settings, address=ray_cluster.address, detector=DEFAULT_DETECTOR,
                                       embedder=spec, show_progress=False)
    assert outcome.error is None and outcome.analysis is not None, outcome.error
    expected = analyse_video(video, settings, build_detector(DEFAULT_DETECTOR), build_embedder(spec))
    on_ray = outcome.analysis
    assert len(expected.tracks) >= 2
    assert plain(on_ray.observations) == plain(expected.observations)
    assert len(on_ray.tracks) == len(expected.tracks)
    for got, want in zip(on_ray.tracks, expected.tracks):
        assert (got.start_frame, got.end_frame, got.detections) == (want.start_frame, want.end_frame, want.detections)
        assert [m.bbox for m in got.members] == [m.bbox for m in want.members]
        np.testing.assert_allclose(got.member_embeddings, want.member_embeddings, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got.embedding, want.embedding, rtol=0, atol=1e-4)
