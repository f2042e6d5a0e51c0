"""Validating what clients send: person names, notes and uploaded image files."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from base.image_header import image_size
from base.images import BGRImage, ImageError, decode_image
from gallery.errors import Busy, InvalidInput, TooLarge

MAX_NAME_LENGTH = 200
MAX_NOTES_LENGTH = 5000
MAX_KEY_LENGTH = 64  # an enrollment's idempotency key
# The limits an uploaded image is held to unless the caller sets others (web.settings does).
MIN_WIDTH = 24  # pixels; narrower images are too small to hold a person
MIN_HEIGHT = 48
MAX_PIXELS = 40_000_000  # an image whose header claims more is refused undecoded
MAX_REQUEST_PIXELS = 100_000_000  # all the images of one request together (300 MB decoded)
DECODE_WAIT = 30.0  # seconds a request waits for other requests' images to be released
# Bidirectional embeddings, overrides and isolates: they make a name display as another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
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
        InvalidInput: missing or blank, longer than 200 characters, or with control characters
            or bidirectional overrides (U+202E would make the name display reversed).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the name is {len(name)} characters long; at most {MAX_NAME_LENGTH} allowed")
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS for ch in name):
        raise InvalidInput("the name must not contain control characters, bidirectional overrides "
                           "or invalid Unicode")
    return name


def clean_idempotency_key(key: str) -> str:
    """Return an idempotency key stripped of outer blanks.

    Raises:
        InvalidInput: blank, longer than 64 characters, or other than letters, digits and ``-_.:``.
    """
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(ch.isascii() and (ch.isalnum() or ch in "-_.:") for ch in key):
        raise InvalidInput(f"an idempotency key is 1 to {MAX_KEY_LENGTH} letters, digits or -_.: characters")
    return key


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


def claimed_pixels(uploads: list[Upload], max_pixels: int | None = None) -> int:
    """Return the pixels the uploads' headers claim together.

    Files without a readable header, and images claiming more than ``max_pixels`` (refused
    undecoded by ``check_image``), count 0.
    """
    total = 0
    for upload in uploads:
        size = image_size(upload.data)
        if size is not None and (max_pixels is None or size[0] * size[1] <= max_pixels):
            total += size[0] * size[1]
    return total


class DecodeBudget:
    """Bounds the decoded pixels of one request, and of all requests being decoded in a process.

    A request's images stay decoded while it is embedded and stored, so its claimed pixels
    are held from before decoding until it is done; a request that would take the process
    past ``concurrent`` requests' worth waits, then is refused as busy. Images claiming more
    than ``max_image_pixels`` are not counted: ``check_image`` refuses them undecoded. Thread-safe.
    """

    def __init__(self, max_request_pixels: int | None = MAX_REQUEST_PIXELS, concurrent: int = 2,
                 wait: float = DECODE_WAIT, max_image_pixels: int | None = MAX_PIXELS) -> None:
        self.max_request_pixels = max_request_pixels
        self.max_image_pixels = max_image_pixels
        self.capacity = None if max_request_pixels is None else max_request_pixels * concurrent
        self.wait = wait
        self.held = 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def hold(self, uploads: list[Upload]) -> Iterator[None]:
        """Hold the uploads' claimed pixels for the block.

        Raises:
            TooLarge: together they claim more than ``max_request_pixels``.
            Busy: the process's budget stayed taken for ``wait`` seconds.
        """
        pixels = claimed_pixels(uploads, self.max_image_pixels)
        if self.max_request_pixels is not None and pixels > self.max_request_pixels:
            raise TooLarge(f"the images of this request have {pixels:,} pixels together, more than "
                           f"the limit of {self.max_request_pixels:,}: send them in several requests")
        capacity = self.capacity
        if capacity is None or pixels == 0:
            yield
            return
        with self._free:
            if not self._free.wait_for(lambda: self.held + pixels <= capacity, self.wait):
                raise Busy("the server is decoding other large images: try again shortly",
                           retry_after=max(1, round(self.wait)))
            self.held += pixels
        try:
            yield
        finally:
            with self._free:
                self.held -= pixels
                self._free.notify_all()
