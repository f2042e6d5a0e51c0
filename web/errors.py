"""One JSON error shape for the API, friendly pages for the browser."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from gallery.errors import Conflict, GalleryError, InvalidInput, NotFound
from web.state import DatabaseNotReady, db_session

log = logging.getLogger(__name__)

_STATUS = {InvalidInput: 400, NotFound: 404, Conflict: 409}


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    """Render an error as ``{"error": {"code", "message"}}`` for the API, a page otherwise."""
    if request.path.startswith("/api/"):
        return jsonify(error={"code": code, "message": message}), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(GalleryError)
    def gallery_error(exc: GalleryError):  # type: ignore[no-untyped-def]
        status = _STATUS.get(type(exc), 400)
        return error_response(status, type(exc).__name__.lower(), str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        message = exc.description or exc.name
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
            message = f"the upload is larger than the {limit} MiB limit"
        return error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), message)

    @app.errorhandler(DatabaseNotReady)
    def database_not_ready(exc: DatabaseNotReady):  # type: ignore[no-untyped-def]
        return error_response(503, "database_not_ready", str(exc))

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.path)
        db_session().rollback()
        return error_response(500, "internal_error", "the server failed; the error is logged")
