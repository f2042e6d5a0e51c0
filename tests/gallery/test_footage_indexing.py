"""Footage indexing into the gallery: sightings stored once, searchable, linked, purged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gallery.db import make_engine, make_session_factory
from gallery.footage_indexing import index_footage
from gallery.models import Sighting, SightingCrop, SightingMatch, SightingVector, Video
from gallery.service import Gallery
from gallery.uploads import Upload
from tests.conftest import ThumbnailEmbedder, jpeg_bytes
from tests.footage.conftest import FRAMES, SETTINGS, WALKERS
from tests.footage.synthetic import ColourDetector, pattern, write_video

pytestmark = pytest.mark.both_databases

DETECTOR = "tests.footage.synthetic:ColourDetector"
EMBEDDER = "tests.conftest:ThumbnailEmbedder"
START = datetime(2026, 11, 27, 22, 0, tzinfo=timezone.utc)


@pytest.fixture
def sessions(data_dir: Path, database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def gallery(data_dir: Path) -> Gallery:
    return Gallery(data_dir, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings" / "gate-3"
    folder.mkdir(parents=True)
    write_video(folder / "walkers.avi", WALKERS, FRAMES)
    return folder.parent


def run(sessions: sessionmaker[Session], gallery: Gallery, recordings: Path):  # type: ignore[no-untyped-def]
    return index_footage(sessions, gallery, [recordings], detector_spec=DETECTOR, embedder_spec=EMBEDDER,
                         settings=SETTINGS, start=START, workers=1, show_progress=False)


def walker_crop(which: int) -> Upload:
    return Upload(jpeg_bytes(pattern(WALKERS[which].pattern)), f"walker{which}.jpg")


def test_index_once_with_times_cameras_and_crops(sessions, gallery, recordings, data_dir) -> None:  # type: ignore[no-untyped-def]
    summary = run(sessions, gallery, recordings)
    assert (summary.videos_found, summary.videos_indexed, summary.tracks) == (1, 1, 2)
    with sessions() as session:
        video = session.scalars(sa.select(Video)).one()
        assert video.camera == "gate-3" and video.recorded_start == START
        sightings = session.scalars(sa.select(Sighting).order_by(Sighting.start_time)).all()
        # walker 0 is in view in frames 0-39, walker 1 in frames 20-59, at 10 fps
        assert sightings[0].start_time - START < timedelta(seconds=0.5)
        assert abs((sightings[1].start_time - START).total_seconds() - 2.0) < 0.5
        assert all(s.crops and s.vectors for s in sightings)
        assert all((data_dir / "crops" / c.stored_path).is_file() for s in sightings for c in s.crops)
        vectors = session.scalar(sa.select(sa.func.count(SightingVector.id)))
        assert len(gallery.sightings.index(session)) == vectors

    again = run(sessions, gallery, recordings)
    assert (again.videos_skipped, again.videos_indexed) == (1, 0)
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count(Video.id))) == 1


def test_search_returns_sightings_of_the_same_person(sessions, gallery, recordings) -> None:  # type: ignore[no-untyped-def]
    run(sessions, gallery, recordings)
    with sessions() as session:
        query = pattern(WALKERS[1].pattern)
        (result,) = gallery.search(session, query, top_k=3, threshold=0.9).results
        assert len(result.sightings) == 1
        hit = result.sightings[0]
        assert hit.camera == "gate-3" and hit.score >= 0.9
        assert hit.start >= START + timedelta(seconds=1.5) and hit.end <= START + timedelta(seconds=6)
        frame, box = gallery.sightings.frame(session, hit.sighting_id)
        assert frame.shape == (240, 320, 3) and box.as_list() == hit.bbox


def test_links_both_ways_and_removed_with_the_person(sessions, gallery, recordings) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        early = gallery.enroll(session, "enrolled before", [walker_crop(0)])
    summary = run(sessions, gallery, recordings)
    assert summary.matches == 1
    with sessions() as session:
        late = gallery.enroll(session, "enrolled after", [walker_crop(1)])
        for person in (early, late):
            (match, sighting, video), = gallery.sightings.for_person(session, person.id, 0.9)
            assert video.camera == "gate-3" and match.score >= 0.9
        gallery.delete_person(session, late.id)
        assert session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)) == 1
        assert session.scalar(sa.select(sa.func.count(Sighting.id))) == 2


def test_purge_removes_old_footage_everywhere(sessions, gallery, recordings, data_dir) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        gallery.enroll(session, "walker", [walker_crop(0)])
    run(sessions, gallery, recordings)
    with sessions() as session:
        assert gallery.sightings.purge(session, START).videos == 0
        receipt = gallery.sightings.purge(session, START + timedelta(days=1))
        assert (receipt.videos, receipt.sightings) == (1, 2) and receipt.vectors > 0
        for table in (Video, Sighting, SightingCrop, SightingVector, SightingMatch):
            assert session.scalar(sa.select(sa.func.count()).select_from(table)) == 0
        assert len(gallery.sightings.index(session)) == 0
        assert not list((data_dir / "crops").rglob("*.jpg"))
        result = gallery.search(session, pattern(WALKERS[0].pattern), top_k=1, threshold=0.0).results[0]
        assert result.sightings == [] and result.matches[0].name == "walker"


def test_orphan_crops_of_an_interrupted_run_are_removed(sessions, gallery, recordings, data_dir) -> None:  # type: ignore[no-untyped-def]
    orphan = data_dir / "crops" / "ab" / ("ab" + "0" * 62 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed run")
    run(sessions, gallery, recordings)
    assert not orphan.exists()
    with sessions() as session:
        stored = set(session.scalars(sa.select(SightingCrop.stored_path)).all())
    assert {f"{p.parent.name}/{p.name}" for p in (data_dir / "crops").rglob("*.jpg")} == stored


def test_analysis_of_another_model_is_refused(sessions, gallery, recordings) -> None:  # type: ignore[no-untyped-def]
    class Other(ThumbnailEmbedder):
        model_id = "another-model"

    other = Gallery(gallery.data_dir, Other(), ColourDetector(), link_threshold=0.9)
    with pytest.raises(ValueError, match="the analysis used model test-thumbnail-v1"):
        run(sessions, other, recordings)
    assert np.array_equal(other.sightings.index(sessions()).ids(), [])
