"""Enroll, search and delete keep the database, the files and the FAISS index in step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.errors import Conflict, InvalidInput, NotFound
from gallery.models import Embedding, Image, Person
from gallery.service import Gallery
from gallery.uploads import Upload
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image

pytestmark = pytest.mark.both_databases


def make_gallery(data_dir: Path, embedder: ThumbnailEmbedder | None = None) -> Gallery:
    return Gallery(data_dir, embedder or ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)


@pytest.fixture
def gallery(data_dir: Path) -> Gallery:
    return make_gallery(data_dir)


def uploads(person: int, variants: range) -> list[Upload]:
    return [Upload(jpeg_bytes(person_image(person, v)), f"p{person}_{v}.jpg") for v in variants]


def counts(session: Session) -> tuple[int, int, int]:
    persons, images, embeddings = (session.scalar(sa.select(sa.func.count()).select_from(t)) or 0
                                   for t in (Person, Image, Embedding))
    return persons, images, embeddings


def test_enroll_then_search_finds_the_person_first(session: Session, gallery: Gallery) -> None:
    ids = {p: gallery.enroll(session, f"person {p}", uploads(p, range(3))).id for p in range(1, 6)}
    response = gallery.search(session, person_image(3, variant=9), top_k=3, threshold=0.9)
    (result,) = response.results
    assert result.bbox is None
    assert result.matches[0].person_id == ids[3] and result.matches[0].match
    assert [m.match for m in result.matches[1:]] == [False, False]
    assert result.margin == pytest.approx(result.matches[0].score - result.matches[1].score)
    assert len(gallery.index(session)) == 15


def test_bad_upload_stores_nothing(session: Session, gallery: Gallery, data_dir: Path) -> None:
    gallery.enroll(session, "kept", uploads(1, range(1)))
    before = counts(session), sorted((data_dir / "images").rglob("*"))
    bad = [*uploads(2, range(2)), Upload(b"not an image", "notes.txt")]
    with pytest.raises(InvalidInput, match=r"notes\.txt: the file is not an image"):
        gallery.enroll(session, "refused", bad)
    with pytest.raises(InvalidInput, match="a name is required"):
        gallery.enroll(session, "  ", uploads(2, range(1)))
    assert (counts(session), sorted((data_dir / "images").rglob("*"))) == before
    assert len(gallery.index(session)) == 1


def test_add_images_refuses_duplicates_and_unknown_person(session: Session, gallery: Gallery) -> None:
    person = gallery.enroll(session, "a", uploads(1, range(2)))
    gallery.add_images(session, person.id, uploads(1, range(2, 3)))
    with pytest.raises(Conflict, match="already enrolled"):
        gallery.add_images(session, person.id, uploads(1, range(1)))
    with pytest.raises(NotFound, match="no person has id 999"):
        gallery.add_images(session, 999, uploads(1, range(5, 6)))
    assert counts(session) == (1, 3, 3)


def test_delete_person_removes_rows_files_and_vectors(session: Session, gallery: Gallery,
                                                      data_dir: Path) -> None:
    gone = gallery.enroll(session, "gone", uploads(1, range(2)))
    kept = gallery.enroll(session, "kept", uploads(2, range(2)))
    receipt = gallery.delete_person(session, gone.id)
    assert receipt.to_dict() == {"persons": 1, "images": [1, 2], "vectors": 2, "files": 2, "searches": 0,
                                 "links": 0}
    assert counts(session) == (1, 2, 2)
    assert len(list((data_dir / "images").rglob("*.jpg"))) == 2
    hits = gallery.search(session, person_image(1, 0), top_k=5, threshold=0.0).results[0].matches
    assert [m.person_id for m in hits] == [kept.id]
    with pytest.raises(NotFound):
        gallery.delete_person(session, gone.id)


def test_shared_file_survives_until_last_reference(session: Session, gallery: Gallery,
                                                   data_dir: Path) -> None:
    same = uploads(1, range(1))
    first = gallery.enroll(session, "first", same)
    second = gallery.enroll(session, "second", same)
    gallery.delete_person(session, first.id)
    assert len(list((data_dir / "images").rglob("*.jpg"))) == 1
    receipt = gallery.delete_image(session, second.images[0].id)
    assert receipt.files == 1 and not list((data_dir / "images").rglob("*.jpg"))


def test_index_is_rebuilt_when_file_is_missing_or_stale(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    for p in range(3):
        gallery.enroll(session, f"p{p}", uploads(p, range(2)))
    path = gallery.index(session).path
    expected = gallery.search(session, person_image(1, 5), top_k=3, threshold=0.5).to_dict()

    path.unlink()
    fresh = make_gallery(data_dir)
    assert fresh.search(session, person_image(1, 5), top_k=3, threshold=0.5).to_dict() == expected
    assert path.is_file()

    old_file = path.read_bytes()
    fresh.enroll(session, "added", uploads(7, range(1)))
    path.write_bytes(old_file)                      # as if the process died before saving the index
    reloaded = make_gallery(data_dir)
    index = reloaded.index(session)
    assert len(index) == 7 and 7 in index.ids()
    assert not reloaded.sync_index(session, index)  # in step now: read back, not rebuilt


def test_new_model_reembeds_stored_images(session: Session, gallery: Gallery, data_dir: Path) -> None:
    gallery.enroll(session, "a", uploads(1, range(2)))

    class OtherModel(ThumbnailEmbedder):
        model_id = "test-thumbnail-v2"

    other = make_gallery(data_dir, OtherModel())
    assert len(other.index(session)) == 2
    models = session.scalars(sa.select(Embedding.model_id).order_by(Embedding.id)).all()
    assert models == ["test-thumbnail-v1"] * 2 + ["test-thumbnail-v2"] * 2


@pytest.mark.parametrize(("top_k", "threshold", "message"), [
    (0, 0.5, "top_k must be between 1 and 100"), (101, 0.5, "top_k"),
    (5, 1.5, "threshold must be a cosine similarity"), (5, float("nan"), "threshold"),
])
def test_search_parameters_out_of_range(session: Session, gallery: Gallery, top_k: int,
                                        threshold: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        gallery.search(session, person_image(1), top_k=top_k, threshold=threshold)


def test_search_of_empty_gallery_returns_no_matches(session: Session, gallery: Gallery) -> None:
    response = gallery.search(session, person_image(1), top_k=5, threshold=0.5)
    assert response.results[0].matches == [] and response.results[0].margin is None
    assert np.isclose(response.threshold, 0.5)
