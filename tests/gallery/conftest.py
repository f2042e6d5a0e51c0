"""Fixtures of the gallery tests: a session factory on the test database, recordings of two walkers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gallery.db import make_engine, make_session_factory
from tests.footage.conftest import FRAMES, WALKERS
from tests.footage.synthetic import write_video


@pytest.fixture
def sessions(data_dir: Path, database_url: str) -> Iterator[sessionmaker[Session]]:
    """Return a session factory on the test's database."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """Return a recordings folder with one camera's folder, gate-3, holding the two walkers' video."""
    folder = tmp_path / "recordings" / "gate-3"
    folder.mkdir(parents=True)
    write_video(folder / "walkers.avi", WALKERS, FRAMES)
    return folder.parent
