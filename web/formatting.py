"""Template filters: how times and recordings are shown on the pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath

from flask import Flask


def when(moment: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Format a stored (UTC) time with its zone, e.g. ``2026-12-07 15:20:31 UTC``."""
    return f"{moment.astimezone(UTC).strftime(fmt)} UTC"


def file_name(path: str) -> str:
    """Return the last part of a server path: the pages name recordings without the server's folders."""
    return PurePath(path).name


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(when)
    app.add_template_filter(file_name)
