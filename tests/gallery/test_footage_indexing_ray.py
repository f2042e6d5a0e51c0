"""Footage indexed through a real local Ray cluster: stored exactly as a local run stores it, once."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from footage import cluster
from gallery.db import make_engine, make_session_factory, sqlite_url
from gallery.footage_indexing import IndexingSummary, index_footage
from gallery.models import Sighting, SightingVector, Video, unpack_vectors
from gallery.service import Gallery
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import FRAMES, SETTINGS, WALKERS
from tests.footage.synthetic import ColourDetector, Walker, write_video
from tests.ray_cluster import LocalCluster, SlowColourDetector, worker_pids

pytestmark = pytest.mark.slow  # a Ray cluster starts once per session (~20 s), each run connects anew

DETECTOR = "tests.footage.synthetic:ColourDetector"
EMBEDDER = "tests.conftest:ThumbnailEmbedder"
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """Two cameras' folders: gate-3 with the two walkers, lobby with two other clips."""
    root = tmp_path / "recordings"
    (root / "gate-3").mkdir(parents=True)
    (root / "lobby").mkdir()
    write_video(root / "gate-3" / "walkers.avi", WALKERS, FRAMES)
    for k in (1, 2):
        walkers = [Walker(40 + k, 0, 30, 10 + 20 * k, 90, dx=6), Walker(50 + k, 8, 38, 260, 15 * k, dx=-5)]
        write_video(root / "lobby" / f"clip{k}.avi", walkers, 40)
    return root


class Site:
    """A data directory, its database and the gallery on it: where one run stores its footage."""

    def __init__(self, folder: Path, template: Path) -> None:
        folder.mkdir()
        shutil.copyfile(template, folder / "reid.db")
        self.data_dir = folder
        self.engine = make_engine(sqlite_url(folder / "reid.db"))
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.gallery = Gallery(folder, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)

    def index(self, recordings: Path, *, ray: str | None, detector: str = DETECTOR) -> IndexingSummary:
        return index_footage(self.sessions, self.gallery, [recordings], detector_spec=detector,
                             embedder_spec=EMBEDDER, settings=SETTINGS, start=START, workers=None if ray else 1,
                             ray_address=ray, show_progress=False)

    def stored(self) -> dict[str, dict[str, Any]]:
        """Return each stored video's row and sightings (crops, vectors) as plain data, by content hash."""
        dim = ThumbnailEmbedder.dim
        with self.sessions() as session:
            assert len(self.gallery.sightings.index(session)) == session.scalar(
                sa.select(sa.func.count(SightingVector.id))), "the sightings index is out of step"
            videos = {}
            for video in session.scalars(sa.select(Video)):
                assert video.sha256 not in videos, f"{video.path} stored twice"
                sightings = []
                for s in session.scalars(sa.select(Sighting).where(Sighting.video_id == video.id)
                                         .order_by(Sighting.start_frame, Sighting.id)):
                    sightings.append({
                        "when": (s.start_time, s.end_time, s.start_frame, s.end_frame, s.detections),
                        "crops": [(c.rank, c.frame, c.x, c.y, c.w, c.h, c.detection_score, c.sharpness, c.quality,
                                   c.stored_path) for c in s.crops],
                        "members": [(v.frame, v.quality) for v in s.vectors],
                        "vectors": unpack_vectors([v.vector for v in s.vectors], dim),
                        "mean": unpack_vectors([s.mean_vector], dim)})
                videos[video.sha256] = {
                    "video": (video.path, video.camera, video.model_id, video.settings, video.recorded_start,
                              video.fps, video.frame_count, video.frames_analysed, video.duration_s),
                    "sightings": sightings}
        return videos

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def sites(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[Site, Site]]:
    local, on_ray = Site(tmp_path / "local", sqlite_template), Site(tmp_path / "ray", sqlite_template)
    yield local, on_ray
    local.close()
    on_ray.close()


def assert_same_footage(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> None:
    """Same videos, tracks, crops and members; vectors equal within float tolerance."""
    assert sorted(actual) == sorted(expected)
    for sha, video in expected.items():
        assert actual[sha]["video"] == video["video"]
        assert len(actual[sha]["sightings"]) == len(video["sightings"]) > 0
        for got, want in zip(actual[sha]["sightings"], video["sightings"]):
            for key in ("when", "crops", "members"):
                assert got[key] == want[key], key
            np.testing.assert_allclose(got["vectors"], want["vectors"], rtol=0, atol=1e-6)
            np.testing.assert_allclose(got["mean"], want["mean"], rtol=0, atol=1e-6)


def crop_files(data_dir: Path) -> set[str]:
    return {str(path.relative_to(data_dir)) for path in (data_dir / "crops").rglob("*.jpg")}


def test_ray_run_stores_what_a_local_run_stores_once(ray_cluster: LocalCluster, sites: tuple[Site, Site],
                                                     recordings: Path) -> None:
    local, on_ray = sites
    by_hand = local.index(recordings, ray=None)
    summary = on_ray.index(recordings, ray=ray_cluster.address)
    assert (summary.videos_found, summary.videos_indexed, summary.videos_failed) == (3, 3, [])
    assert (summary.tracks, summary.detections, summary.frames_analysed) == (
        by_hand.tracks, by_hand.detections, by_hand.frames_analysed)
    assert_same_footage(local.stored(), on_ray.stored())
    assert crop_files(on_ray.data_dir) == crop_files(local.data_dir) != set()

    again = on_ray.index(recordings, ray=ray_cluster.address)
    assert (again.videos_skipped, again.videos_indexed, again.videos_failed) == (3, 0, [])
    assert len(on_ray.stored()) == 3


def test_a_video_lost_with_its_worker_is_indexed_by_the_next_run(
        ray_cluster: LocalCluster, ray_markers: Path, sites: tuple[Site, Site], recordings: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    local, on_ray = sites
    write_video(recordings / "lobby" / "clip3.avi", [Walker(61, 0, 35, 0, 60, dx=7)], 40)
    monkeypatch.setattr(cluster, "RETRIES", 0)  # a lost worker's video is given up, not handed on
    slow = "tests.ray_cluster:SlowColourDetector"
    killed: list[int] = []

    def kill_the_first_worker() -> None:
        deadline = time.monotonic() + 60
        while not worker_pids(ray_markers) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(SlowColourDetector.delay * 5)
        killed.append(worker_pids(ray_markers)[0])
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    try:
        first = on_ray.index(recordings, ray=ray_cluster.address, detector=slow)
    finally:
        killer.join()
    assert killed, "no worker started"
    assert (first.videos_found, first.videos_indexed, len(first.videos_failed)) == (4, 3, 1)
    assert len(on_ray.stored()) == 3

    second = on_ray.index(recordings, ray=ray_cluster.address, detector=slow)
    assert (second.videos_skipped, second.videos_indexed, second.videos_failed) == (3, 1, [])
    assert second.tracks > 0
    local.index(recordings, ray=None)
    assert_same_footage(local.stored(), on_ray.stored())
