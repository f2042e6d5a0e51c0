"""Several processes' copies of an index stay in step through the generation counter and the lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.index_sync import raise_generation, read_generation
from gallery.models import Embedding
from gallery.service import Gallery
from gallery.uploads import Upload
from gallery.vector_index import VectorIndex
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image


def process(data_dir: Path) -> Gallery:
    """A Gallery as another worker process would have it: its own index copy and lock handle."""
    return Gallery(data_dir, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)


def uploads(person: int, count: int = 1) -> list[Upload]:
    return [Upload(jpeg_bytes(person_image(person, v)), f"p{person}_{v}.jpg") for v in range(count)]


def first_person(gallery: Gallery, session: Session, person: int) -> int | None:
    matches = gallery.search(session, person_image(person, 0), top_k=3, threshold=0.5).results[0].matches
    return matches[0].person_id if matches else None


def file_ids(gallery: Gallery, session: Session) -> list[int]:
    index = process(gallery.data_dir).index(session)  # a fresh process reads the saved file
    return sorted(index.ids().tolist())


def test_a_write_in_one_process_is_searched_in_the_other(sessions, data_dir) -> None:
    one, two = process(data_dir), process(data_dir)
    with sessions() as session:
        kept = one.enroll(session, "kept", uploads(1, 2)).id
        assert first_person(two, session, 1) == kept          # two syncs on first use
        added = two.enroll(session, "added", uploads(2)).id
        assert first_person(one, session, 2) == added          # one re-syncs: the generation moved
        one.delete_person(session, added)
        assert first_person(two, session, 2) != added
        vectors = sorted(session.scalars(sa.select(Embedding.image_id)).all())
        assert sorted(one.index(session).ids().tolist()) == sorted(two.index(session).ids().tolist()) == vectors
        assert file_ids(one, session) == vectors


def test_each_write_raises_the_generation_once(sessions, data_dir) -> None:
    gallery = process(data_dir)
    with sessions() as session:
        start = read_generation(session, "gallery")
        person = gallery.enroll(session, "a", uploads(1, 2))
        gallery.add_images(session, person.id, [Upload(jpeg_bytes(person_image(1, 5)), "more.jpg")])
        gallery.delete_image(session, person.images[0].id)
        gallery.search(session, person_image(1, 0), top_k=1, threshold=0.5)
        assert read_generation(session, "gallery") == start + 3      # searches change nothing
        session.expire_all()  # as in a new request: the person's images are read again
        gallery.delete_person(session, person.id)
        assert read_generation(session, "gallery") == start + 4
        assert read_generation(session, "sightings") == 0


def test_a_refused_write_leaves_generation_and_copy(sessions, data_dir) -> None:
    gallery = process(data_dir)
    with sessions() as session:
        gallery.enroll(session, "a", uploads(1))
        generation, copy = read_generation(session, "gallery"), gallery.index(session)
        with pytest.raises(Exception, match="no person has id 999"):
            gallery.delete_person(session, 999)
        assert read_generation(session, "gallery") == generation and gallery.index(session) is copy


def test_writers_of_two_processes_take_turns(sessions, data_dir) -> None:
    one, two = process(data_dir), process(data_dir)
    held, done = threading.Event(), []

    def hold_the_lock() -> None:
        with sessions() as session, one._vectors.writing(session):
            held.set()
            time.sleep(0.5)
            done.append(("one", time.monotonic()))

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(10)
    with sessions() as session:
        two.enroll(session, "waits", uploads(3))
    done.append(("two", time.monotonic()))
    holder.join()
    assert [who for who, _ in sorted(done, key=lambda d: d[1])] == ["one", "two"]
    assert (data_dir / "index" / "gallery.lock").is_file()


def test_other_processes_catch_up_from_the_log(sessions, data_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = process(data_dir), process(data_dir)
    with sessions() as session:
        one.enroll(session, "first", uploads(1))
        assert first_person(two, session, 1) is not None  # two reads the files once, on first use
        loads: list[VectorIndex] = []
        load = VectorIndex.load
        monkeypatch.setattr(VectorIndex, "load", lambda self: loads.append(self) or load(self))
        added = one.enroll(session, "second", uploads(2)).id
        assert first_person(two, session, 2) == added
        one.delete_person(session, added)
        assert first_person(two, session, 2) != added
        assert loads == []  # both writes applied from the log: the files were not read again


def test_a_generation_missing_from_the_log_brings_a_full_sync(sessions, data_dir) -> None:
    one, two = process(data_dir), process(data_dir)
    with sessions() as session:
        kept = one.enroll(session, "kept", uploads(1)).id
        assert first_person(two, session, 1) == kept
        raise_generation(session, "gallery")  # as if a writer died between its commit and its log record
        session.commit()
        assert first_person(two, session, 1) == kept  # two re-syncs from the files, which match the database
        assert two.index(session).generation == read_generation(session, "gallery")
        assert first_person(one, session, 1) == kept  # one catches up to the mark two appended
        assert one.index(session).generation == read_generation(session, "gallery")
