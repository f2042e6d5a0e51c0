"""Errors the gallery raises; each message says what was wrong."""

from __future__ import annotations


class GalleryError(Exception):
    """Base class of the gallery's errors."""


class InvalidInput(GalleryError):
    """A request the gallery refuses: bad field, bad image, out-of-range parameter."""


class NotFound(GalleryError):
    """No person or image has the given id."""


class Conflict(GalleryError):
    """The request clashes with what is stored (e.g. an image enrolled twice)."""


class TooLarge(InvalidInput):
    """A request bigger than a limit allows (e.g. more decoded pixels than one request may have)."""


class Busy(GalleryError):
    """The service cannot take the request now (e.g. too many images being decoded); retry later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlreadyEnrolled(Exception):
    """An enrollment repeating an earlier one (the same idempotency key): ``person_id`` is who it enrolled.

    Not a refusal: the caller answers with the first enrollment's result.
    """

    def __init__(self, person_id: int) -> None:
        super().__init__(f"already enrolled as person {person_id}")
        self.person_id = person_id
