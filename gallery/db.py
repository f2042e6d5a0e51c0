"""Engines and sessions for the gallery database (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> sa.Engine:
    """Create an engine; SQLite gets foreign keys, WAL journaling and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` that keeps objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
