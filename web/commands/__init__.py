"""Click commands of the ``reid`` command line, grouped by subject, and their shared error handling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from gallery.errors import GalleryError
from web.settings import SettingsError
from web.state import DatabaseNotReady

# The refusals a command reports as a message: bad input, a missing or old database, a bad
# setting. Any other exception is a bug, and keeps its traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (GalleryError, DatabaseNotReady, SettingsError)


def cli_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's expected refusals into a message and exit status 1 instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper
