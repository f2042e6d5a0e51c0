"""One JSON error shape for the API, friendly pages for the browser."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gallery.errors import Busy, Conflict, GalleryError, InvalidInput, NotFound, TooLarge
from web.state import DatabaseNotReady, db_session

log = logging.getLogger(__name__)

_STATUS = {InvalidInput: 400, TooLarge: 413, NotFound: 404, Conflict: 409, Busy: 503}


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    """Render an error as ``{"error": {"code", "message"}}`` for the API, a page otherwise."""
    if request.path.startswith("/api/"):
        return jsonify(error={"code": code, "message": message}), status
    return render_template("error.html", status=status, message=message), status


def _too_large(config: Mapping[str, Any]) -> str:
    """Say which limit a 413 hit: the body's size, or Werkzeug's form parts or field size."""
    limit, length = config["MAX_CONTENT_LENGTH"], request.content_length
    if limit is not None and (length is None or length > limit):
        return f"the upload is larger than the limit of {limit} bytes ({limit / 2**20:.3g} MiB)"
    return (f"the form has more than {config['MAX_FORM_PARTS']} parts, or a text field "
            f"larger than {config['MAX_FORM_MEMORY_SIZE']} bytes")


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(GalleryError)
    def gallery_error(exc: GalleryError) -> ResponseReturnValue:
        status = _STATUS.get(type(exc), 400)
        body, status = error_response(status, type(exc).__name__.lower(), str(exc))
        return body, status, {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else {}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        message = exc.description or exc.name
        headers: dict[str, str] = {}
        if exc.code == 413:
            message = _too_large(app.config)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
            message = f"{request.method} is not allowed on {request.path}; use {headers['Allow']}"
        body, status = error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), message)
        return body, status, headers

    @app.errorhandler(DatabaseNotReady)
    def database_not_ready(exc: DatabaseNotReady) -> ResponseReturnValue:
        return error_response(503, "database_not_ready", str(exc))

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.path)
        db_session().rollback()
        return error_response(500, "internal_error", "the server failed; the error is logged")
