"""The Flask app: HTML pages and a JSON API over the gallery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web.settings import Settings, is_setting, load_settings


def create_app(test_config: Mapping[str, Any] | None = None, *, settings: Settings | None = None) -> Flask:
    """Create the app from ``settings``, by default read from the ``REID_*`` environment variables.

    Args:
        test_config: overrides. Keys that name a setting (``"DATA_DIR"``, ``"TOP_K"``, ...)
            are checked with the others, and only when ``settings`` is not given; the rest
            (``"TESTING"``) go to Flask's config as they are.
        settings: settings already loaded (the command line checks them before any command).

    Raises:
        SettingsError: a setting is invalid; the message names its variable.
    """
    flask_config = dict(test_config or {})
    overrides = {key: flask_config.pop(key) for key in list(flask_config) if is_setting(key)}
    if settings is None:
        settings = load_settings(overrides)
    elif overrides:
        raise TypeError(f"give settings either as settings or in test_config, not both: {sorted(overrides)}")
    app = Flask(__name__)
    app.config.from_mapping(settings.flask_config())
    app.config.from_mapping(flask_config)

    from web import api, auth, errors, formatting, pages, params, state

    app.url_map.converters["int"] = params.DatabaseId
    state.init_app(app, settings)
    errors.init_app(app)
    formatting.init_app(app)
    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app
