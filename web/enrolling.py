"""The enroll request shared by the pages and the API: the posted form's person and images."""

from __future__ import annotations

from flask import request

from gallery.models import Person
from web import params
from web.auth import actor
from web.state import db_session, reid


def enroll_posted() -> Person:
    """Enroll the person posted as ``name``, ``notes`` and ``images`` (with ``force``,
    ``keep_original`` and the idempotency key).

    Raises:
        AlreadyEnrolled: the request repeats an earlier one's idempotency key.
        InvalidInput: a field or an image is refused (nothing is stored).
    """
    return reid().gallery.enroll(db_session(), request.form.get("name"), params.uploads("images"),
                                 notes=request.form.get("notes"), actor=actor(), force=params.flag("force"),
                                 keep_original=params.flag("keep_original"),
                                 idempotency_key=params.idempotency_key())
