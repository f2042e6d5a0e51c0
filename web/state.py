"""Per-app state kept in ``app.extensions``: database sessions, models and the gallery."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from detector.registry import build_detector
from embedder.base import Embedder
from embedder.registry import build_embedder, default_embedder_spec
from gallery.db import make_engine, make_session_factory, sqlite_url
from gallery.schema import current_revision, head_revision
from gallery.service import Gallery
from web.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class DatabaseNotReady(RuntimeError):
    """The database is missing or behind the newest migration."""


class ReidState:
    """The app's long-lived objects, each built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.database_url = settings.database_url or sqlite_url(self.data_dir / "reid.db")
        self.engine = make_engine(self.database_url)
        self.sessions = make_session_factory(self.engine)
        self._embedder: Embedder | None = None
        self._gallery: Gallery | None = None
        self._lock = threading.RLock()

    def check_database(self) -> None:
        """Raise DatabaseNotReady unless the schema is at the newest migration."""
        current, head = current_revision(self.engine), head_revision(self.database_url)
        if current != head:
            raise DatabaseNotReady(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} is at revision "
                f"{current or 'none'}, the code needs {head}: run `reid db upgrade`")

    @property
    def embedder_spec(self) -> str:
        """Return the configured embedder's name or model directory."""
        return self.settings.embedder or default_embedder_spec()

    @property
    def embedder(self) -> Embedder:
        """Return the configured embedder (weights load lazily, on first use).

        Raises:
            SettingsError: the registry knows no embedder by the configured name.
        """
        with self._lock:
            if self._embedder is None:
                try:
                    self._embedder = build_embedder(self.embedder_spec, **self.settings.embedder_options())
                except KeyError as error:  # the registry's refusal, listing the known names
                    raise SettingsError(f"REID_EMBEDDER: {error.args[0]}") from error
            return self._embedder

    @property
    def gallery(self) -> Gallery:
        """Return the gallery, checking the database and building the detector on first use.

        Raises:
            DatabaseNotReady: the schema is missing or old.
            SettingsError: the registries know no embedder or detector by the configured name.
        """
        with self._lock:
            if self._gallery is None:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self.check_database()
                try:
                    detector = build_detector(self.settings.detector, **self.settings.detector_options())
                except KeyError as error:  # the registry's refusal, listing the known names
                    raise SettingsError(f"REID_DETECTOR: {error.args[0]}") from error
                except FileNotFoundError as error:  # the network named is not there
                    raise SettingsError(f"REID_DETECTOR_MODEL: {error}") from error
                self._gallery = Gallery(
                    self.data_dir, self.embedder, detector, link_threshold=self.default_threshold(),
                    detector_min_score=self.settings.detector_min_score, **self.settings.image_limits(),
                    max_request_pixels=self.settings.max_request_pixels,
                    max_concurrent_decodes=self.settings.max_concurrent_decodes,
                    ann_threshold=self.settings.ann_threshold,
                    search_retention=timedelta(days=self.settings.search_retention_days))
            return self._gallery

    def warm(self) -> None:
        """Load the models and run each once, on a blank full-HD frame and a person-sized crop of it.

        Done before a worker takes requests, so that the first one costs what later ones do
        (loading and tracing the networks took tens of seconds otherwise).
        """
        gallery = self.gallery
        frame = np.zeros((1080, 1920, 3), np.uint8)
        gallery.detector.detect(frame, gallery.detector_min_score)
        gallery.embedder.embed([frame[:256, :128]])

    def default_threshold(self) -> float:
        """Return the configured threshold, else the model's calibrated one, else the fallback."""
        return self.embedder.match_threshold(self.settings.match_threshold)[0]


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the state and close each request's session at teardown."""
    app.extensions["reid"] = ReidState(settings)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings.data_dir)
    app.teardown_appcontext(_close_session)


def reid() -> ReidState:
    """Return the current app's state."""
    return current_app.extensions["reid"]


def db_session() -> Session:
    """Return this request's (or command's) session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = reid().sessions()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def _secret_key(data_dir: Path) -> str:
    """Return the key that signs session cookies, kept in the data dir so all workers share it."""
    path = data_dir / "secret_key"
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
