"""The Flask app: HTML pages and a JSON API over the gallery."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": None,             # None: $XDG_DATA_HOME/reid or ~/.local/share/reid
    "DATABASE_URL": None,         # None: SQLite file reid.db in DATA_DIR
    "EMBEDDER": None,             # None: the shipped re-ID model (or the ImageNet baseline)
    "DETECTOR": "ssdlite",        # or "none": every still is one person crop
    "DETECTOR_MIN_SCORE": 0.5,
    "MATCH_THRESHOLD": None,      # None: the model's calibrated threshold
    "FALLBACK_THRESHOLD": 0.5,    # when neither configuration nor model gives one
    "TOP_K": 5,
    "MAX_FILES": 50,
    "MIN_IMAGE_WIDTH": 24,
    "MIN_IMAGE_HEIGHT": 48,
    "MAX_IMAGE_PIXELS": 40_000_000,  # larger images are refused from their header, undecoded
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "SESSION_COOKIE_SAMESITE": "Lax",      # the sign-in cookie (HttpOnly, signed with SECRET_KEY)
    "SESSION_COOKIE_SECURE": False,        # true when served over HTTPS (behind a TLS proxy)
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,  # seconds a sign-in lasts
}


def default_data_dir() -> Path:
    """Return the data directory used when none is configured."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "reid"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then ``REID_*`` environment variables, then ``test_config``."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("REID")
    if test_config:
        app.config.from_mapping(test_config)
    app.config["DATA_DIR"] = str(Path(app.config["DATA_DIR"] or default_data_dir()).expanduser())

    from web import api, auth, errors, pages, params, state

    app.url_map.converters["int"] = params.DatabaseId
    state.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app
