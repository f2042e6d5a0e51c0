"""Shared fixtures: a migrated temporary data dir, the app, its clients, a fake embedder."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from base.images import BGRImage
from embedder.base import Embedder
from embedder.registry import register_embedder
from gallery.db import make_engine, make_session_factory, sqlite_url
from gallery.schema import upgrade
from web import create_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
# A PostgreSQL server where the test role may create databases (.ci/run starts one).
POSTGRES_URL = os.environ.get("REID_TEST_POSTGRES_URL")


class ThumbnailEmbedder(Embedder):
    """A deterministic stand-in: a fixed random projection of a 16x8 colour thumbnail.

    Similar-looking images get similar vectors, so search behaves sensibly in tests.
    """

    model_id = "test-thumbnail-v1"
    dim = 64

    def _load(self) -> None:
        self._projection = np.random.default_rng(0).normal(size=(16 * 8 * 3, self.dim)).astype(np.float32)

    def _embed(self, images: Sequence[BGRImage]) -> np.ndarray:
        thumbs = np.stack([cv2.resize(im, (8, 16), interpolation=cv2.INTER_AREA) for im in images])
        flat = thumbs.reshape(len(images), -1).astype(np.float32) / 255.0
        return (flat - flat.mean(axis=1, keepdims=True)) @ self._projection


register_embedder("test-thumbnail", ThumbnailEmbedder)


def person_image(person: int, variant: int = 0, size: tuple[int, int] = (128, 64)) -> BGRImage:
    """Draw a synthetic 'person': a seeded colour pattern, varied slightly per variant."""
    rng = np.random.default_rng(person)
    base = rng.integers(0, 256, size=(8, 4, 3)).astype(np.float32)
    image = cv2.resize(base, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    noise = np.random.default_rng(1000 * person + variant).normal(0, 12, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(image: BGRImage) -> bytes:
    """Encode an image as JPEG."""
    return cv2.imencode(".jpg", image)[1].tobytes()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run database tests on SQLite; those marked ``both_databases`` on PostgreSQL too."""
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases") is not None
        metafunc.parametrize("backend", ["sqlite", "postgresql"] if both else ["sqlite"],
                             indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database a test runs on, "sqlite" or "postgresql" (skipped without a server)."""
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL runs need REID_TEST_POSTGRES_URL (.ci/run starts a server)")
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per session, for tests to copy."""
    path = tmp_path_factory.mktemp("template") / "reid.db"
    upgrade(sqlite_url(path))
    # The migration's engine is disposed: its write-ahead log is checkpointed and removed,
    # so the one file is the whole database.
    assert [p.name for p in path.parent.iterdir()] == [path.name], "the template has side files"
    return path


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An autocommit engine on the PostgreSQL test server, to create and drop databases."""
    assert POSTGRES_URL, "needs REID_TEST_POSTGRES_URL"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin: sa.Engine) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the newest schema once per session.

    It refuses connections once migrated, so that no session (an autovacuum worker
    included) can keep ``CREATE DATABASE ... TEMPLATE`` from copying it.
    """
    name = create_database(postgres_admin, "reid_template")
    upgrade(postgres_database_url(name))
    with postgres_admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
    yield name
    drop_database(postgres_admin, name)


def postgres_database_url(name: str) -> str:
    """Return the URL of database ``name`` on the PostgreSQL test server."""
    assert POSTGRES_URL, "needs REID_TEST_POSTGRES_URL"
    return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def create_database(admin: sa.Engine, prefix: str, template: str | None = None) -> str:
    """Create a database with a fresh name, empty or a copy of ``template``; return its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copy}'))
    return name


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh database on the PostgreSQL test server.

    For the tests of the migrations themselves; the others take ``database_url``.
    """
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "reid.db")
        return
    admin = request.getfixturevalue("postgres_admin")
    name = create_database(admin, "reid_test")
    yield postgres_database_url(name)
    drop_database(admin, name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """A database at the newest schema: a copy of the session's migrated template.

    SQLite: the template file copied to ``tmp_path / "reid.db"``; PostgreSQL: a fresh
    database made by ``CREATE DATABASE ... TEMPLATE``.
    """
    if backend == "sqlite":
        path = tmp_path / "reid.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield sqlite_url(path)
        return
    admin = request.getfixturevalue("postgres_admin")
    name = create_database(admin, "reid_test", template=request.getfixturevalue("postgres_template"))
    yield postgres_database_url(name)
    drop_database(admin, name)


def drop_database(admin: sa.Engine, name: str, attempts: int = 40) -> None:
    """Drop database ``name``, waiting out an autovacuum worker that may be visiting it.

    ``WITH (FORCE)`` ends the tests' own sessions, but not a worker run by the superuser,
    which is refused as InsufficientPrivilege until the worker leaves.
    """
    for attempt in range(attempts):
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            return
        except sa.exc.ProgrammingError as error:
            if "InsufficientPrivilege" not in type(error.orig).__name__ or attempt == attempts - 1:
                raise
            time.sleep(0.25)


@pytest.fixture
def data_dir(tmp_path: Path, database_url: str) -> Path:
    """A data directory; its database (``database_url``) is at the newest schema."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def session(data_dir: Path, database_url: str) -> Iterator[Session]:
    """A session on the migrated test database."""
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def app(data_dir: Path, database_url: str) -> Iterator[Flask]:
    """The app on the fake embedder, without person detection."""
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                      "EMBEDDER": "test-thumbnail", "DETECTOR": "none", "MATCH_THRESHOLD": 0.8})
    yield app
    app.extensions["reid"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli_env(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment for running ``reid`` commands on the test data dir; returns the data dir."""
    monkeypatch.setenv("REID_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REID_DATABASE_URL", database_url)
    monkeypatch.setenv("REID_EMBEDDER", "test-thumbnail")
    monkeypatch.setenv("REID_DETECTOR", "none")
    monkeypatch.setenv("REID_MATCH_THRESHOLD", "0.8")
    return data_dir


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def form_token(client: FlaskClient) -> str:
    """Return the CSRF token the pages put in their forms for this client's session."""
    html = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the sign-in page has no CSRF token"
    return match.group(1)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Ray cluster on loopback, shared by the session: a head without CPUs, two one-CPU nodes."""
    from tests.ray_cluster import local_cluster

    with local_cluster(2, tmp_path_factory.mktemp("ray-markers")) as cluster:
        yield cluster


@pytest.fixture
def ray_markers(ray_cluster: Any) -> Path:
    """The folder where ``tests.ray_cluster.SlowColourDetector`` notes its processes, emptied."""
    folder = Path(os.environ["TEST_REID_RAY_MARKERS"])
    for marker in folder.iterdir():
        marker.unlink()
    return folder
