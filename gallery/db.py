"""Engines and sessions for the gallery database (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> sa.Engine:
    """Create an engine; SQLite gets foreign keys, WAL journaling, a busy timeout and secure delete.

    ``secure_delete`` overwrites deleted rows with zeros, so an erased person's name or
    vectors do not linger in the file's free pages.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` that keeps objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def release_erased(session: Session) -> None:
    """Make deleted rows unrecoverable from the database's files, as far as the database allows.

    On SQLite, ``secure_delete`` has zeroed the deleted content in the new page versions; a
    checkpoint writes them into the database file and truncates the write-ahead log, which
    still holds the old versions. The checkpoint waits at most 2 s for other connections; if
    they keep it from finishing, SQLite's next checkpoints overwrite the old versions instead.
    Other databases are left to their own vacuuming.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.commit()
        session.execute(sa.text("PRAGMA busy_timeout = 2000"))
        try:
            busy, _, _ = session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        finally:
            session.execute(sa.text(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}"))
            session.commit()
        if busy:
            log.warning("the write-ahead log could not be truncated after an erasure: other "
                        "connections were busy; later checkpoints will overwrite it")
