"""Stored searches: ranked again without the upload, expired, purged, erased with the person they show."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.errors import AlreadyEnrolled, InvalidInput, NotFound
from gallery.models import AuditEntry, Person, SavedSearch, utcnow
from gallery.service import Gallery
from gallery.uploads import CheckedImage, Upload, check_image
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image

pytestmark = pytest.mark.both_databases


class RetrainedEmbedder(ThumbnailEmbedder):
    """The same vectors under another model id: as after `reid adapt`."""

    model_id = "test-thumbnail-v2"


def make_gallery(data_dir: Path, embedder: ThumbnailEmbedder | None = None) -> Gallery:
    return Gallery(data_dir, embedder or ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9,
                   search_retention=timedelta(days=2))


def still(person: int, variant: int) -> Upload:
    return Upload(jpeg_bytes(person_image(person, variant)), "still.jpg")


def checked(upload: Upload) -> CheckedImage:
    return check_image(upload, min_width=1, min_height=1)


def actions(session: Session) -> list[tuple[str, str | None]]:
    return [(e.action, e.target) for e in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_a_stored_search_ranks_as_the_search_did(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    ids = [gallery.enroll(session, f"person {p}", [still(p, 0)]).id for p in range(1, 4)]
    query = checked(still(2, 5))
    search_id = gallery.save_search(session, query, actor="user:bob")
    direct = gallery.search(session, query.image, top_k=3, threshold=0.8)
    again = gallery.rerun_search(session, search_id, top_k=3, threshold=0.8, actor="user:bob")
    assert again.search_id == search_id and again.results == direct.results
    assert again.results[0].matches[0].person_id == ids[1]
    strict = gallery.rerun_search(session, search_id, top_k=1, threshold=0.9999)
    assert [m.match for m in strict.results[0].matches] == [False]
    assert actions(session)[-4:] == [("save_search", f"search:{search_id}"), ("search", None), ("search", None),
                                     ("search", None)]
    with pytest.raises(InvalidInput, match="top_k must be between 1 and 100"):
        gallery.rerun_search(session, search_id, top_k=0, threshold=0.8)
    with pytest.raises(NotFound, match="no search has id 999"):
        gallery.rerun_search(session, 999, top_k=3, threshold=0.8)

    retrained = make_gallery(data_dir, RetrainedEmbedder())  # the still's persons are embedded again
    (result,) = retrained.rerun_search(session, search_id, top_k=3, threshold=0.8).results
    expected = direct.results[0].matches
    assert [(m.person_id, m.match) for m in result.matches] == [(m.person_id, m.match) for m in expected]
    assert [m.score for m in result.matches] == pytest.approx([m.score for m in expected], abs=1e-5)


def test_expired_searches_are_refused_then_purged_with_their_stills(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    gallery.enroll(session, "someone", [still(1, 0)])
    old, new = (gallery.save_search(session, checked(still(1, v))) for v in (3, 4))
    session.get(SavedSearch, old).created_at = utcnow() - timedelta(days=3)
    session.commit()
    with pytest.raises(NotFound, match=f"search {old} has expired: searches are kept 2 day"):
        gallery.rerun_search(session, old, top_k=3, threshold=0.8)
    assert len(list((data_dir / "searches").rglob("*.jpg"))) == 2

    assert gallery.searches.purge(session, actor="cli:root") == 1
    assert session.scalars(sa.select(SavedSearch.id)).all() == [new]
    assert len(list((data_dir / "searches").rglob("*.jpg"))) == 1
    assert actions(session)[-1] == ("purge_searches", None)
    assert gallery.searches.purge(session, utcnow() + timedelta(days=3)) == 1  # the newer one's turn
    assert not list((data_dir / "searches").rglob("*.jpg"))


def test_erasing_a_person_erases_the_searches_made_with_their_images(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    enrolled = still(1, 0)
    person = gallery.enroll(session, "Zelda", [enrolled])
    other = gallery.save_search(session, checked(still(2, 1)))
    gallery.save_search(session, checked(enrolled))  # searched with the very file enrolled
    gallery.save_search(session, checked(enrolled))
    receipt = gallery.delete_person(session, person.id)
    assert receipt.searches == 2 and receipt.files == 2  # the image and the one still both searches shared
    assert session.scalars(sa.select(SavedSearch.id)).all() == [other]
    digest = hashlib.sha256(enrolled.data).hexdigest()
    assert not [p for p in (data_dir / "searches").rglob("*") if digest in p.name]


def test_an_enrollment_repeated_with_its_key_enrolls_nobody(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    first = gallery.enroll(session, "Ines", [still(3, 0)], idempotency_key="form-7f3a")
    with pytest.raises(AlreadyEnrolled) as repeated:
        gallery.enroll(session, "Ines", [still(3, 0)], idempotency_key="form-7f3a")
    assert repeated.value.person_id == first.id
    assert session.scalar(sa.select(sa.func.count(Person.id))) == 1
    assert gallery.enroll(session, "Ines", [still(3, 0)], idempotency_key="form-8b2c").id != first.id
    with pytest.raises(InvalidInput, match="an idempotency key is 1 to 64"):
        gallery.enroll(session, "Ines", [still(3, 0)], idempotency_key="no spaces")


def test_stills_left_by_a_killed_save_are_removed(session: Session, data_dir: Path) -> None:
    gallery = make_gallery(data_dir)
    kept = gallery.save_search(session, checked(still(1, 0)))
    stray = gallery.searches.store.root / "ab" / "ab12.jpg"  # written, never committed
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    (stray.parent / "tmpk1ll3d.tmp").write_bytes(b"x")
    assert gallery.searches.remove_orphan_files(session) == 2
    assert [p.name for p in gallery.searches.store.root.rglob("*") if p.is_file()] == [
        Path(session.get(SavedSearch, kept).stored_path).name]
