"""A real server for the browser tests: a migrated SQLite database, the shipped model, the real
person detector, one indexed recording, served by waitress on a free loopback port."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from skimage import data as samples
from waitress.server import create_server

from footage.settings import FootageSettings
from gallery.db import sqlite_url
from gallery.footage_indexing import index_footage
from gallery.schema import upgrade
from web import create_app
from web.server import warm_up

RECORDED = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


def astronaut() -> np.ndarray:
    """Scikit-image's public-domain photograph of Eileen Collins, BGR."""
    return cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2BGR)


def cameraman() -> np.ndarray:
    """Scikit-image's public-domain photograph of a cameraman, BGR."""
    return cv2.cvtColor(samples.camera(), cv2.COLOR_GRAY2BGR)


def two_person_still() -> np.ndarray:
    """One frame with two persons side by side."""
    return np.concatenate([cameraman(), astronaut()], axis=1)


def write_recording(path: Path, frames: int = 24, fps: float = 8.0) -> Path:
    """Write a recording of the two persons of ``two_person_still`` passing a grey lobby's camera, as MJPG AVI."""
    still = two_person_still()
    width, height = 1280, 600
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    try:
        for frame in range(frames):
            canvas = np.full((height, width, 3), 120, np.uint8)
            x = 20 + frame * 8
            canvas[44:44 + still.shape[0], x:x + still.shape[1]] = still
            writer.write(canvas)
    finally:
        writer.release()
    return path


@dataclass(frozen=True)
class Site:
    """The running server's address and its data directory."""

    url: str
    data_dir: Path


@contextlib.contextmanager
def running_site(data_dir: Path) -> Iterator[Site]:
    """Migrate, index one recording, warm the models, serve until the block ends."""
    upgrade(sqlite_url(data_dir / "reid.db"))
    app = create_app({"DATA_DIR": str(data_dir), "DETECTOR": "ssdlite"})
    warm_up(app)
    recordings = data_dir / "recordings" / "lobby"
    recordings.mkdir(parents=True)
    write_recording(recordings / "lobby_2026-11-27_21-00-00.avi")
    state = app.extensions["reid"]
    index_footage(state.sessions, state.gallery, [recordings.parent], detector_spec="ssdlite",
                  embedder_spec=state.embedder_spec, settings=FootageSettings(), workers=1, show_progress=False)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.effective_port}", data_dir)
    finally:
        server.close()
        thread.join(timeout=10)
        state.engine.dispose()
