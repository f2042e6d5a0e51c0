"""Reading request fields into typed values, with errors that name the field."""

from __future__ import annotations

import math

from flask import request
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from gallery.errors import InvalidInput
from gallery.uploads import Upload
from web.state import reid

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class DatabaseId(IntegerConverter):
    """``<int:...>`` in routes: at most 10 digits, so a huge id is a 404 without reaching the gallery.

    (The gallery answers ids past its 32-bit range as not found itself.)
    """

    regex = r"\d{1,10}"


def _field(name: str) -> str | None:
    value = request.values.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def top_k() -> int:
    """Return ``top_k`` from the request, or the configured default.

    Raises:
        InvalidInput: not an integer (range is checked by the gallery).
    """
    raw = _field("top_k")
    if raw is None:
        return reid().settings.top_k
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"top_k must be an integer, got {raw[:40]!r}") from None


def threshold(default: float) -> float:
    """Return ``threshold`` from the request, or ``default``.

    Raises:
        InvalidInput: not a finite number (range is checked by the gallery).
    """
    raw = _field("threshold")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"threshold must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"threshold must be a finite number, got {raw[:40]!r}")
    return value


def flag(name: str) -> bool:
    """Return a yes/no field: true for ``true``, ``1``, ``on`` or ``yes`` (an HTML checkbox), else false.

    Raises:
        InvalidInput: a value that is neither yes nor no (``false``, ``0``, ``off``, ``no``).
    """
    raw = _field(name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1", "on", "yes"):
        return True
    if raw.lower() in ("false", "0", "off", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {raw[:40]!r}")


def idempotency_key() -> str | None:
    """Return the request's idempotency key: the ``Idempotency-Key`` header, else the form field."""
    return request.headers.get("Idempotency-Key") or _field("idempotency_key")


def verdict() -> bool:
    """Return a review's ``verdict``: True for ``confirm``, False for ``reject``.

    Raises:
        InvalidInput: missing or another value.
    """
    raw = _field("verdict")
    if raw not in ("confirm", "reject"):
        raise InvalidInput(f"verdict must be confirm or reject, got {(raw or '')[:40]!r}")
    return raw == "confirm"


def uploads(field: str) -> list[Upload]:
    """Return the files sent under ``field``, skipping empty file inputs of HTML forms.

    Raises:
        UnsupportedMediaType: a body that is not a form (JSON, say).
        InvalidInput: more files than the ``max_files`` setting.
    """
    if request.mimetype and request.mimetype not in FORM_TYPES:
        raise UnsupportedMediaType(f"send the files as multipart/form-data, not {request.mimetype[:60]}")
    files = [f for f in request.files.getlist(field) if f.filename or f.content_length]
    limit = reid().settings.max_files
    if len(files) > limit:
        raise InvalidInput(f"at most {limit} files per request, got {len(files)}")
    return [Upload(data=f.read(), filename=f.filename or "") for f in files]


def one_upload(field: str) -> Upload:
    """Return the single file sent under ``field``.

    Raises:
        InvalidInput: no file, or more than one.
    """
    files = uploads(field)
    if len(files) != 1:
        raise InvalidInput(f"send exactly one image file in the field {field!r}, got {len(files)}")
    return files[0]
