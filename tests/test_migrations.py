"""The Alembic migrations produce exactly the models' schema, run down and up again, keep data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.access import create_key, create_user
from gallery.db import make_engine, make_session_factory, sqlite_url
from gallery.models import (
    Base,
    Person,
    Sighting,
    SightingCrop,
    SightingMatch,
    SightingVector,
    Video,
)
from gallery.schema import alembic_config, current_revision, upgrade
from gallery.service import Gallery
from gallery.uploads import Upload
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image

pytestmark = pytest.mark.both_databases


SURROGATE_KEY_TABLES = {table.name for table in Base.metadata.tables.values()
                        if [column.name for column in table.primary_key] == ["id"]}


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_the_models(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url)
    assert schema_diff(url) == []


def test_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)
    assert schema_diff(url) == []


def enroll(gallery: Gallery, session: Session, person: int) -> Person:
    """Enroll synthetic person ``person`` with two images (rows, vectors and an audit entry)."""
    return gallery.enroll(session, f"person {person}", [
        Upload(jpeg_bytes(person_image(person, v)), f"p{person}_{v}.jpg") for v in range(2)])


def test_a_deleted_newest_id_is_never_reused(empty_database_url: str, tmp_path: Path) -> None:
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    gallery = Gallery(tmp_path, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)
    with make_session_factory(engine)() as session:
        enroll(gallery, session, 1)
        newest = enroll(gallery, session, 2)
        newest_image_ids = [image.id for image in newest.images]
        gallery.delete_person(session, newest.id)
        successor = enroll(gallery, session, 3)
        assert successor.id > newest.id
        assert min(image.id for image in successor.images) > max(newest_image_ids)
    engine.dispose()


def sqlite_schema(url: str, kind: str) -> dict[str, str]:
    """Return the SQL of each SQLite schema object of ``kind`` ('table', 'index', 'trigger')."""
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = :kind"),
                                  {"kind": kind}).all()
    engine.dispose()
    return {name: sql for name, sql in rows}


def autoincrement_tables(url: str) -> set[str]:
    """Return the SQLite tables declared AUTOINCREMENT."""
    return {name for name, sql in sqlite_schema(url, "table").items() if "AUTOINCREMENT" in sql}


def test_every_surrogate_key_autoincrements_on_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "reid.db")
    upgrade(url)
    assert {table.name for table in Base.metadata.tables.values()
            if table.dialect_options["sqlite"]["autoincrement"]} == SURROGATE_KEY_TABLES
    assert autoincrement_tables(url) == SURROGATE_KEY_TABLES


def populate(url: str, data_dir: Path) -> None:
    """Fill every table: persons (one deleted), a key, a user, an indexed video with a sighting."""
    engine = make_engine(url)
    gallery = Gallery(data_dir, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)
    with make_session_factory(engine)() as session:
        persons = [enroll(gallery, session, p) for p in range(1, 5)]
        gallery.delete_person(session, persons[1].id)
        create_key(session, "viewer", "ops", actor="cli:test")
        create_user(session, "alice", "correct horse battery", "admin", actor="cli:test")
        start = datetime(2026, 11, 27, tzinfo=UTC)
        video = Video(path="/rec/lobby.avi", camera="lobby", sha256="0" * 64, model_id="m", settings="s",
                      recorded_start=start, fps=25.0, frame_count=10, frames_analysed=10,
                      duration_s=0.4, processing_s=0.1)
        sighting = Sighting(start_time=start, end_time=start, start_frame=0, end_frame=9, detections=3,
                            mean_vector=b"\0" * 8)
        sighting.crops.append(SightingCrop(rank=0, frame=4, x=1, y=2, w=30, h=60, detection_score=0.9,
                                           sharpness=1.0, quality=0.8, stored_path="crops/1.jpg"))
        sighting.vectors.append(SightingVector(frame=4, quality=0.8, vector=b"\0" * 8))
        video.sightings.append(sighting)
        session.add(video)
        session.flush()
        session.add(SightingMatch(person_id=persons[0].id, sighting_id=sighting.id, score=0.97))
        session.commit()
    engine.dispose()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Return every row of every table but alembic_version (and SQLite's own), in id order."""
    engine = make_engine(url)
    names = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    with engine.connect() as connection:
        rows = {name: [tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {name} ORDER BY 1, 2"))]
                for name in names}
    engine.dispose()
    return rows


def assert_intact(url: str, rows: dict[str, list[tuple]], indexes: dict[str, str]) -> None:
    """The database holds ``rows`` and ``indexes``, audit_log refuses changes, no key dangles."""
    assert snapshot(url) == rows
    assert sqlite_schema(url, "index") == indexes
    assert set(sqlite_schema(url, "trigger")) == {"audit_log_no_update", "audit_log_no_delete"}
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        for change in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.IntegrityError, match="append-only"):
                connection.exec_driver_sql(change)
            connection.rollback()
    engine.dispose()


def populated_at_0003(url: str, data_dir: Path) -> None:
    """Fill every table at the newest schema, then downgrade the database to revision 0003."""
    upgrade(url)
    populate(url, data_dir)
    command.downgrade(alembic_config(url), "0003")


def test_upgrade_keeps_every_row_id_index_and_trigger(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "reid.db")
    populated_at_0003(url, tmp_path)
    rows, indexes = snapshot(url), sqlite_schema(url, "index")
    assert all(rows.values()) and len(rows["embeddings"]) == 6
    upgrade(url, "0004")
    assert_intact(url, rows, indexes)
    # sign_in_failures and saved_searches are made later, by 0006 and 0007
    assert autoincrement_tables(url) == SURROGATE_KEY_TABLES - {"sign_in_failures", "saved_searches"}
    command.downgrade(alembic_config(url), "0003")
    assert_intact(url, rows, indexes)
    assert autoincrement_tables(url) == set()


def test_upgrade_that_finds_a_dangling_reference_changes_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "reid.db")
    populated_at_0003(url, tmp_path)
    engine = make_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.exec_driver_sql("UPDATE embeddings SET image_id = 999 WHERE id = 1")
        connection.commit()
    engine.dispose()
    rows, tables = snapshot(url), sqlite_schema(url, "table")
    with pytest.raises(RuntimeError, match=r"foreign key check failed.*embeddings"):
        upgrade(url)
    assert (snapshot(url), sqlite_schema(url, "table")) == (rows, tables)
    engine = make_engine(url)
    assert current_revision(engine) == "0003"
    engine.dispose()
