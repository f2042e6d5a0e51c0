"""Click commands of the ``reid`` command line, grouped by subject, and their shared error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from gallery.errors import GalleryError
from web.state import DatabaseNotReady


def cli_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the gallery's refusals into a message and exit status 1 instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (GalleryError, DatabaseNotReady, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(message) from exc

    return wrapper
