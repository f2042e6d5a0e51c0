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
