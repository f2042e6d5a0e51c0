"""Finding video files and what is known about them: camera, recording start, content hash.

Recording start, in order of precedence:

1. an explicit time (``--start``), naive times read as UTC;
2. a timestamp in the file name, such as ``cam1_2026-11-27T22-00-00.mp4``,
   ``20261127_220000.avi`` or ``2026-11-27_22-00-00+01:00.mkv``: UTC unless the name carries
   an offset (``Z``, ``+01:00``, ``-0500``);
3. the file's modification time minus the video's duration, since a recorder last writes a
   file when the recording ends (copies that do not keep modification times lose this).

Every start is a timezone-aware ``datetime``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path

import cv2

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".dav", ".h264", ".h265", ".hevc",
})

_NAME_TIMESTAMP = re.compile(
    r"(?<!\d)(?P<year>\d{4})-?(?P<month>\d{2})-?(?P<day>\d{2})"
    r"[T_ .-]?(?P<hour>\d{2})[-:.h]?(?P<minute>\d{2})[-:.m]?(?P<second>\d{2})"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?(?!\d)")


class StartSource(str, Enum):
    """Where a recording start time came from."""

    EXPLICIT = "explicit"
    FILE_NAME = "file name"
    MODIFICATION_TIME = "modification time"


@dataclass(frozen=True, slots=True)
class RecordingStart:
    """When a recording began (timezone-aware) and how that was found out."""

    time: datetime
    source: StartSource


def find_videos(paths: Iterable[str | Path],
                extensions: frozenset[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """List the videos under ``paths``: folders searched recursively by extension, files as given.

    A file named explicitly is accepted whatever its extension if OpenCV can open it.

    Returns:
        Resolved paths without duplicates, in the order given, each folder's files sorted.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file named explicitly is not a video OpenCV can open.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.suffix.lower() in extensions and candidate.is_file():
                    found.setdefault(candidate, None)
        elif path.is_file():
            if path.suffix.lower() not in extensions and not _opens_as_video(path):
                raise ValueError(f"{path} is not a video OpenCV can open")
            found.setdefault(path, None)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return list(found)


def _opens_as_video(path: Path) -> bool:
    """Tell whether OpenCV can open ``path`` and decode a frame from it."""
    capture = cv2.VideoCapture(str(path))
    try:
        return capture.isOpened() and capture.grab()
    finally:
        capture.release()


def camera_name(path: Path, explicit: str | None = None) -> str:
    """Return ``explicit`` if given, else the name of the folder holding the video."""
    if explicit:
        return explicit
    return path.resolve().parent.name or "camera"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time such as ``2026-11-27T22:00:00+01:00``; naive times are UTC.

    Raises:
        ValueError: ``text`` is not an ISO 8601 time; the message shows it.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time such as 2026-11-27T22:00:00, "
                         f"got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_from_name(name: str) -> datetime | None:
    """Find the first valid timestamp in a file name; UTC unless the name gives an offset."""
    for match in _NAME_TIMESTAMP.finditer(name):
        fields = {k: int(v) for k, v in match.groupdict().items() if k != "zone"}
        try:
            moment = datetime(**fields, tzinfo=_zone(match["zone"]))
        except ValueError:
            continue
        if 1970 <= moment.year <= 2200:
            return moment
    return None


def _zone(text: str | None) -> timezone:
    """Turn ``Z``, ``+hh:mm`` or ``-hhmm`` (or nothing, meaning UTC) into a timezone."""
    if not text or text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-offset if text[0] == "-" else offset)


def recording_start(path: Path, *, explicit: datetime | None = None,
                    duration_s: float = 0.0) -> RecordingStart:
    """Decide when the recording in ``path`` began (see the module docstring).

    Args:
        path: the video file.
        explicit: a given start; naive times are read as UTC.
        duration_s: the video's duration, subtracted from the modification time.
    """
    if explicit is not None:
        moment = explicit if explicit.tzinfo else explicit.replace(tzinfo=UTC)
        return RecordingStart(moment, StartSource.EXPLICIT)
    named = time_from_name(path.name)
    if named is not None:
        return RecordingStart(named, StartSource.FILE_NAME)
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return RecordingStart(modified - timedelta(seconds=duration_s), StartSource.MODIFICATION_TIME)


def content_hash(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
