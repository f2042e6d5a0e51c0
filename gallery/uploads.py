"""Validating what clients send: person names, notes and uploaded image files."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from base.images import BGRImage, ImageError, decode_image
from gallery.errors import InvalidInput

MAX_NAME_LENGTH = 200
MAX_NOTES_LENGTH = 5000
# The limits an uploaded image is held to unless the caller sets others (web.settings does).
MIN_WIDTH = 24  # pixels; narrower images are too small to hold a person
MIN_HEIGHT = 48
MAX_PIXELS = 40_000_000  # an image whose header claims more is refused undecoded
_EXTENSIONS = {b"\xff\xd8": ".jpg", b"\x89P": ".png", b"BM": ".bmp", b"RI": ".webp"}


@dataclass(frozen=True)
class Upload:
    """An image file as received: its bytes and the name the client gave it."""

    data: bytes
    filename: str = ""


@dataclass(frozen=True)
class CheckedImage:
    """An upload that decoded into a usable image."""

    upload: Upload
    image: BGRImage
    sha256: str
    extension: str

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def clean_name(name: str | None) -> str:
    """Return the person's name stripped of outer blanks.

    Raises:
        InvalidInput: missing or blank, longer than 200 characters, or with control characters.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise InvalidInput("the name must not contain control characters or invalid Unicode")
    return name


def clean_notes(notes: str | None) -> str:
    """Return the notes stripped of outer blanks.

    Raises:
        InvalidInput: longer than 5000 characters, or with control characters other than
            tabs and line breaks (PostgreSQL refuses NUL in text).
    """
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES_LENGTH:
        raise InvalidInput(f"the notes are {len(notes)} characters long; at most {MAX_NOTES_LENGTH} allowed")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in notes):
        raise InvalidInput("the notes must not contain control characters (other than tabs and "
                           "line breaks) or invalid Unicode")
    return notes


def safe_filename(filename: str) -> str:
    """Return the last path component of a client's file name, printable and at most 255 chars."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()[:255]
    return "" if base in (".", "..") else base


def check_image(upload: Upload, *, min_width: int, min_height: int,
                max_pixels: int | None = None) -> CheckedImage:
    """Decode and validate one upload.

    Raises:
        InvalidInput: empty, not an image, truncated, too small, or claiming more than
            ``max_pixels`` pixels; the message names the file.
    """
    label = safe_filename(upload.filename) or "the upload"
    try:
        image = decode_image(upload.data, min_width=min_width, min_height=min_height,
                             max_pixels=max_pixels)
    except ImageError as exc:
        raise InvalidInput(f"{label}: {exc}") from exc
    return CheckedImage(
        upload=upload, image=image, sha256=hashlib.sha256(upload.data).hexdigest(),
        extension=_EXTENSIONS.get(upload.data[:2], ".img"))


def check_images(uploads: list[Upload], *, min_width: int, min_height: int,
                 max_pixels: int | None = None) -> list[CheckedImage]:
    """Decode and validate uploads, refusing an empty list and repeated files.

    Raises:
        InvalidInput: no upload, or any upload is unusable.
    """
    if not uploads:
        raise InvalidInput("at least one image is required")
    checked = [check_image(u, min_width=min_width, min_height=min_height, max_pixels=max_pixels)
               for u in uploads]
    seen: set[str] = set()
    for item in checked:
        if item.sha256 in seen:
            raise InvalidInput(f"{safe_filename(item.upload.filename) or 'a file'} is uploaded twice")
        seen.add(item.sha256)
    return checked
