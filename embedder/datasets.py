"""Folders of person images, one folder per person: the layout for training and evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
_CAMERA_PATTERN = re.compile(r"^[^_]+_c?(\d+)_")


@dataclass(frozen=True)
class LabelledImage:
    """One image file with the person it shows and, when its name tells, the camera."""

    path: Path
    person: str
    camera: int | None


def camera_of(filename: str) -> int | None:
    """Read the camera from a ``<pid>_<cam>_...`` (or ``<pid>_c<cam>_...``) file name."""
    match = _CAMERA_PATTERN.match(filename)
    return int(match.group(1)) if match else None


def list_identity_folders(root: Path) -> list[LabelledImage]:
    """List the images under ``root/<person>/``, sorted by person then file name.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: ``root`` holds no person folder with an image in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory of per-person folders")
    items = [
        LabelledImage(path=path, person=folder.name, camera=camera_of(path.name))
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise ValueError(f"{root} holds no <person>/<image> files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return items
