"""Erasing a person leaves nothing of them: not in any table, not in any file, not in the index."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.models import Base, Embedding, Image, Sighting, SightingMatch, Video
from gallery.service import Gallery
from gallery.uploads import Upload, check_image
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image

pytestmark = pytest.mark.both_databases

NAME = "Zelda Quaternion-Erasable"
NOTES = "notes-marker-7f3a: seen at the north gate"


def dump(session: Session) -> str:
    """Return every row of every table (the gallery's and Alembic's) as text, bytes in hex too."""
    parts = []
    tables = [*Base.metadata.sorted_tables, sa.table("alembic_version", sa.column("version_num"))]
    for table in tables:
        for row in session.execute(sa.select(table)).all():
            for value in row:
                parts.append(value.hex() if isinstance(value, bytes) else str(value))
                if isinstance(value, bytes):
                    parts.append(value.decode("latin-1"))
    return "\n".join(parts)


def link_to_footage(session: Session, person_id: int) -> None:
    """Store a video with one sighting linked to the person, as footage indexing would."""
    video = Video(path="/rec/lobby.avi", camera="lobby", sha256="0" * 64, model_id="m", settings="s",
                  recorded_start=datetime(2026, 11, 27, tzinfo=UTC), fps=25.0, frame_count=10,
                  frames_analysed=10, duration_s=0.4, processing_s=0.1)
    video.sightings.append(Sighting(start_time=video.recorded_start, end_time=video.recorded_start,
                                    start_frame=0, end_frame=9, detections=3, mean_vector=b"\0" * 8))
    session.add(video)
    session.flush()
    session.add(SightingMatch(person_id=person_id, sighting_id=video.sightings[0].id, score=0.97))
    session.commit()


def test_erasure_leaves_nothing_of_the_person(session: Session, data_dir: Path, database_url: str) -> None:
    gallery = Gallery(data_dir, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)
    other = gallery.enroll(session, "Someone Else", [Upload(jpeg_bytes(person_image(2, 0)), "other.jpg")])
    uploads = [Upload(jpeg_bytes(person_image(1, v)), f"zelda-original-{v}.jpg") for v in range(3)]
    person = gallery.enroll(session, NAME, uploads[:2], notes=NOTES, actor="user:alice")
    gallery.add_images(session, person.id, uploads[2:], actor="user:alice")
    link_to_footage(session, person.id)
    gallery.search(session, person_image(1, 9), top_k=3, threshold=0.5, actor="user:bob", query_sha256="ab" * 32)
    gallery.save_search(session, check_image(uploads[1], min_width=1, min_height=1), actor="user:bob")
    for upload in uploads[::2]:  # searched with the very files enrolled: the audit must not keep their digests
        gallery.search(session, person_image(1, 0), top_k=3, threshold=0.5, actor="user:bob",
                       query_sha256=hashlib.sha256(upload.data).hexdigest())

    images = session.scalars(sa.select(Image).where(Image.person_id == person.id)).all()
    image_ids = [image.id for image in images]
    vectors = [e.vector for e in session.scalars(sa.select(Embedding).where(Embedding.image_id.in_(image_ids)))]
    needles = {NAME, NOTES, *(u.filename for u in uploads), *(hashlib.sha256(u.data).hexdigest() for u in uploads),
               *(image.sha256 for image in images), *(image.stored_path for image in images)}
    assert {hashlib.sha256(u.data).hexdigest() for u in uploads} == {image.sha256 for image in images}
    stored_files = [gallery.store.path(image.stored_path) for image in images]
    assert all(path.is_file() for path in stored_files) and len(vectors) == 3
    before = dump(session)
    assert all(needle in before for needle in needles)  # the dump would show them

    receipt = gallery.delete_person(session, person.id, actor="user:alice")

    assert receipt.to_dict() == {"persons": 1, "images": image_ids, "vectors": 3, "files": 4, "searches": 1,
                                 "links": 1}
    after = dump(session)
    assert [needle for needle in needles if needle in after] == []
    assert not any(vector.hex() in after for vector in vectors)
    assert session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Sighting)) == 1  # the footage itself stays

    index_ids = set(gallery.index(session).ids().tolist())
    assert index_ids == {image.id for image in other.images} and not index_ids & set(image_ids)
    on_disk = [p for p in data_dir.rglob("*") if p.is_file()]
    assert not any(path.exists() for path in stored_files)
    contents = {p: p.read_bytes() for p in on_disk}
    if database_url.startswith("sqlite"):  # the database's own files: freed pages and the log too
        db_file = Path(sa.make_url(database_url).database or "")
        contents |= {p: p.read_bytes() for p in db_file.parent.glob(db_file.name + "*")}
    for path, content in contents.items():
        assert not any(needle.encode() in content for needle in needles), path
        assert not any(vector in content for vector in vectors), path
        assert hashlib.sha256(content).hexdigest() not in {image.sha256 for image in images}, path

    (result,) = gallery.search(session, person_image(1, 9), top_k=3, threshold=0.5).results
    assert [m.person_id for m in result.matches] == [other.id]


def digests(data: bytes) -> set[str]:
    """Return the usual hex digests of ``data``."""
    return {hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256", "sha512", "blake2b")}


def test_the_audit_keeps_no_digest_of_an_erased_persons_images(session: Session, data_dir: Path) -> None:
    from gallery import audit

    gallery = Gallery(data_dir, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)
    uploads = [Upload(jpeg_bytes(person_image(1, v)), f"{v}.jpg") for v in range(2)]
    person = gallery.enroll(session, NAME, uploads)
    kept = Upload(jpeg_bytes(person_image(5, 0)), "other-still.jpg")
    for upload in [*uploads, kept, uploads[0]]:
        gallery.search(session, person_image(1, 0), top_k=3, threshold=0.5, actor="user:bob",
                       query_sha256=hashlib.sha256(upload.data).hexdigest())
    searched = [audit.entry_dict(e)["details"].get("query_sha256") for e in audit.entries(session)]
    assert searched.count(hashlib.sha256(uploads[0].data).hexdigest()) == 2

    gallery.delete_person(session, person.id)

    exported = audit.export(audit.entries(session), "json") + audit.export(audit.entries(session), "csv")
    everything = dump(session) + exported
    assert [d for upload in uploads for d in digests(upload.data) if d in everything] == []
    assert hashlib.sha256(kept.data).hexdigest() in exported  # other searches keep their stills' digests
    assert [e.action for e in audit.entries(session)].count("search") == 4  # the entries themselves stay
