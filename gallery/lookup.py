"""Fetching one row by the id a client gave, or saying plainly that there is none."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gallery.errors import NotFound
from gallery.models import MAX_ID

Row = TypeVar("Row")


def get_or_not_found(session: Session, model: type[Row], row_id: int, what: str,
                     options: tuple[Any, ...] = ()) -> Row:
    """Return the ``model`` row with primary key ``row_id``.

    The row is always read from the database (another process may have deleted it); ids
    outside the column's range are answered like unknown ones, without a query.

    Raises:
        NotFound: "no <what> has id <row_id>".
    """
    row = session.get(model, row_id, options=options, populate_existing=True) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"no {what} has id {row_id}")
    return row
