"""Footage indexing into the gallery: sightings stored once, searchable, linked, purged."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gallery.footage_indexing import index_footage
from gallery.models import (
    Person,
    Sighting,
    SightingCrop,
    SightingMatch,
    SightingVector,
    Video,
)
from gallery.service import Gallery
from gallery.sightings import PurgeReceipt
from gallery.uploads import Upload
from tests.conftest import ThumbnailEmbedder, jpeg_bytes
from tests.footage.conftest import SETTINGS, WALKERS
from tests.footage.synthetic import ColourDetector, pattern

pytestmark = pytest.mark.both_databases

DETECTOR = "tests.footage.synthetic:ColourDetector"
EMBEDDER = "tests.conftest:ThumbnailEmbedder"
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)



@pytest.fixture
def gallery(data_dir: Path) -> Gallery:
    return Gallery(data_dir, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)



def run(sessions: sessionmaker[Session], gallery: Gallery, recordings: Path):
    return index_footage(sessions, gallery, [recordings], detector_spec=DETECTOR, embedder_spec=EMBEDDER,
                         settings=SETTINGS, start=START, workers=1, show_progress=False)


def walker_crop(which: int) -> Upload:
    return Upload(jpeg_bytes(pattern(WALKERS[which].pattern)), f"walker{which}.jpg")


def test_index_once_with_times_cameras_and_crops(sessions, gallery, recordings, data_dir) -> None:
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


def test_search_returns_sightings_of_the_same_person(sessions, gallery, recordings) -> None:
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


def test_links_both_ways_and_removed_with_the_person(sessions, gallery, recordings) -> None:
    with sessions() as session:
        early = gallery.enroll(session, "enrolled before", [walker_crop(0)])
    summary = run(sessions, gallery, recordings)
    assert summary.matches == 1
    with sessions() as session:
        late = gallery.enroll(session, "enrolled after", [walker_crop(1)])
        for person in (early, late):
            (linked,) = gallery.sightings.for_person(session, person.id, 0.9)
            assert linked.video.camera == "gate-3" and linked.score >= 0.9 and not linked.confirmed
        gallery.delete_person(session, late.id)
        assert session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)) == 1
        assert session.scalar(sa.select(sa.func.count(Sighting.id))) == 2


class Killed(BaseException):
    """The process killed right after a commit: nothing after it runs, not even clean-up."""


def links_of(session: Session, person_id: int) -> list[int]:
    return sorted(session.scalars(sa.select(SightingMatch.sighting_id).where(SightingMatch.person_id == person_id)))


def stored_files(data_dir: Path) -> list[Path]:
    return [path for path in (data_dir / "images").rglob("*") if path.is_file()]


def test_enroll_commits_its_links_with_the_person(sessions, gallery, recordings, data_dir) -> None:
    run(sessions, gallery, recordings)

    def refuse(_session: Session) -> None:
        raise RuntimeError("the commit failed")

    with sessions() as session:
        sa.event.listen(session, "before_commit", refuse)
        with pytest.raises(RuntimeError, match="the commit failed"):
            gallery.enroll(session, "refused", [walker_crop(0)])
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count(Person.id))) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)) == 0
        assert len(gallery.index(session)) == 0
    assert stored_files(data_dir) == []

    def kill(_session: Session) -> None:
        raise Killed

    with sessions() as session:
        sa.event.listen(session, "after_commit", kill)
        with pytest.raises(Killed):
            gallery.enroll(session, "killed after the commit", [walker_crop(0)])
    with sessions() as session:
        person = session.scalars(sa.select(Person)).one()
        (sighting,) = links_of(session, person.id)  # walker 0 is one track of the video
        assert session.get(Sighting, sighting).start_time - START < timedelta(seconds=0.5)

        walker = gallery.enroll(session, "walker 1", [walker_crop(1)])
        linked = links_of(session, walker.id)
        assert len(linked) == 1 and linked != [sighting]
        assert gallery.delete_person(session, walker.id).links == len(linked)


def test_a_sighting_deleted_after_the_search_is_left_out(sessions, gallery, recordings, monkeypatch) -> None:
    run(sessions, gallery, recordings)
    find_links = gallery.sightings.find_links
    deleted = []

    def find_then_delete_one(session: Session, vectors: np.ndarray, threshold: float) -> dict[int, float]:
        links = find_links(session, vectors, threshold)
        with sessions() as other:  # a delete the footage lock does not hold back, e.g. another host's
            deleted.append(min(links))
            other.execute(sa.delete(Sighting).where(Sighting.id == deleted[0]))
            other.commit()
        return links

    monkeypatch.setattr(gallery.sightings, "find_links", find_then_delete_one)
    with sessions() as session:
        person = gallery.enroll(session, "both walkers", [walker_crop(0), walker_crop(1)])
        remaining = session.scalars(sa.select(Sighting.id)).all()
        assert deleted and len(remaining) == 1 and deleted[0] not in remaining
        assert links_of(session, person.id) == remaining
        assert len(person.images) == 2 and len(gallery.index(session)) == 2


def test_a_sighting_being_deleted_while_linking_is_left_out(sessions, gallery, recordings,
                                                             database_url, monkeypatch) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite lets no other transaction write between the enroll's first write and its commit")
    run(sessions, gallery, recordings)
    store_links = gallery.sightings.store_links
    deleting = threading.Event()

    def delete_uncommitted(sighting_id: int) -> None:
        with sessions() as other:
            other.execute(sa.delete(Sighting).where(Sighting.id == sighting_id))
            deleting.set()
            time.sleep(1.0)  # the enroll reads the sightings meanwhile
            other.commit()

    def store_during_a_delete(session: Session, links: list[tuple[int, int, float]]) -> int:
        deleter = threading.Thread(target=delete_uncommitted, args=(min(s for _, s, _ in links),))
        deleter.start()
        try:
            assert deleting.wait(10)
            return store_links(session, links)
        finally:
            deleter.join()

    monkeypatch.setattr(gallery.sightings, "store_links", store_during_a_delete)
    with sessions() as session:
        person = gallery.enroll(session, "both walkers", [walker_crop(0), walker_crop(1)])
        remaining = session.scalars(sa.select(Sighting.id)).all()
        assert len(remaining) == 1 and links_of(session, person.id) == remaining


def test_footage_writers_wait_for_an_enroll_to_commit(sessions, gallery, recordings, data_dir,
                                                       monkeypatch) -> None:
    run(sessions, gallery, recordings)
    find_links = gallery.sightings.find_links
    purges: list[PurgeReceipt] = []

    def purge() -> None:
        with sessions() as other:  # another process: its own index copy and lock handle
            purges.append(Gallery(data_dir, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)
                          .sightings.purge(other, START + timedelta(days=1)))

    purger = threading.Thread(target=purge)

    def find_during_a_purge(session: Session, vectors: np.ndarray, threshold: float) -> dict[int, float]:
        links = find_links(session, vectors, threshold)
        purger.start()
        purger.join(timeout=1.0)
        assert purger.is_alive() and not purges, "the purge ran inside the enroll"
        return links

    monkeypatch.setattr(gallery.sightings, "find_links", find_during_a_purge)
    with sessions() as session:
        person = gallery.enroll(session, "walker", [walker_crop(0)])
        linked_at_commit = links_of(session, person.id)
    purger.join(30)
    (receipt,) = purges
    assert len(linked_at_commit) == 1 and receipt.sightings == 2
    with sessions() as session:
        assert links_of(session, person.id) == [] and session.get(Person, person.id) is not None


def test_a_person_deleted_while_a_video_is_linked_waits_and_leaves_no_links(
        sessions, gallery, recordings, data_dir, monkeypatch) -> None:
    with sessions() as session:
        person_id = gallery.enroll(session, "walker", [walker_crop(0)]).id
    person_hits = gallery._person_hits
    receipts = []

    def delete() -> None:
        with sessions() as other:  # another process: its own index copy and lock handle
            receipts.append(Gallery(data_dir, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)
                            .delete_person(other, person_id))

    deleter = threading.Thread(target=delete)

    def search_during_a_delete(session: Session, vectors: np.ndarray, top_k: int):
        hits = person_hits(session, vectors, top_k)
        deleter.start()
        deleter.join(timeout=1.0)
        assert deleter.is_alive() and not receipts, "the delete ran inside the linking"
        return hits

    monkeypatch.setattr(gallery, "_person_hits", search_during_a_delete)
    assert run(sessions, gallery, recordings).matches == 1
    deleter.join(30)
    (receipt,) = receipts
    assert receipt.persons == 1 and receipt.links == 1
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)) == 0
        assert session.scalar(sa.select(sa.func.count(Sighting.id))) == 2


def test_purge_removes_old_footage_everywhere(sessions, gallery, recordings, data_dir) -> None:
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


def test_orphan_crops_of_an_interrupted_run_are_removed(sessions, gallery, recordings, data_dir) -> None:
    orphan = data_dir / "crops" / "ab" / ("ab" + "0" * 62 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed run")
    run(sessions, gallery, recordings)
    assert not orphan.exists()
    with sessions() as session:
        stored = set(session.scalars(sa.select(SightingCrop.stored_path)).all())
    assert {f"{p.parent.name}/{p.name}" for p in (data_dir / "crops").rglob("*.jpg")} == stored


def test_analysis_of_another_model_is_refused(sessions, gallery, recordings) -> None:
    class Other(ThumbnailEmbedder):
        model_id = "another-model"

    other = Gallery(gallery.data_dir, Other(), ColourDetector(), link_threshold=0.9)
    with pytest.raises(ValueError, match="the analysis used model test-thumbnail-v1"):
        run(sessions, other, recordings)
    assert np.array_equal(other.sightings.index(sessions()).ids(), [])
