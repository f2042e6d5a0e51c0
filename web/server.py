"""The production server: gunicorn worker processes, each building the app from the factory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from web import create_app

log = logging.getLogger(__name__)


class ReidServer(BaseApplication):
    """Gunicorn running ``create_app()`` in each worker process.

    The app is not preloaded: the master forks before any model, engine or index exists, so
    TensorFlow is never forked, and each worker loads its own models on first use. The
    workers share state through the database only (see ``gallery.index_sync.SharedIndex``).
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options, then any settings in ``GUNICORN_CMD_ARGS`` (those win)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no ~/.gunicorn socket
            self.cfg.set("control_socket_disable", True)
        extra = self.cfg.get_cmd_args_from_env()
        if extra:
            parsed = self.cfg.parser().parse_args(extra)
            for key, value in vars(parsed).items():
                if value is not None and key in self.cfg.settings:
                    self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app in a worker; bring its indexes in step before it takes requests."""
        app = create_app()
        warm_up(app)
        return app


def warm_up(app: Flask) -> None:
    """Sync the app's indexes with the database and remove files left by a killed write."""
    state = app.extensions["reid"]
    gallery = state.gallery
    with state.sessions() as session:
        gallery.remove_orphan_files(session)
        gallery.sightings.remove_orphan_crops(session)
        vectors, sightings = len(gallery.index(session)), len(gallery.sightings.index(session))
    log.info("worker %d ready: model %s, %d image and %d sighting vectors indexed",
             os.getpid(), gallery.embedder.model_id, vectors, sightings)


def serve(data_dir: Path, *, host: str, port: int, workers: int, threads: int,
          timeout: int = 120) -> None:
    """Run gunicorn until it is stopped: ``workers`` processes of ``threads`` threads each.

    The workers build the app from the environment, so the data directory (which may come
    from ``--data-dir``) is passed to them as ``REID_DATA_DIR``.
    """
    os.environ["REID_DATA_DIR"] = str(data_dir)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    ReidServer({"bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
                "preload_app": False, "timeout": timeout, "proc_name": "reid"}).run()
