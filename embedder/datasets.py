"""Folders of person images, one folder per person: the layout for training and evaluation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
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


def list_sources(roots: Sequence[Path]) -> list[LabelledImage]:
    """List the images of several per-person trees, keeping their persons apart.

    Each person is named ``<k>-<root name>/<folder>`` for the k-th root, so the same folder
    name in two sources is two persons.

    Raises:
        ValueError: no roots, or a root given twice.
        As ``list_identity_folders`` for each root.
    """
    if not roots:
        raise ValueError("give at least one folder of per-person image folders")
    resolved = [Path(root).resolve() for root in roots]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"a data folder is given twice: {[str(root) for root in roots]}")
    return [replace(item, person=f"{k}-{Path(root).name}/{item.person}")
            for k, root in enumerate(roots) for item in list_identity_folders(Path(root))]


def find_sets(folder: Path) -> list[Path]:
    """Return the evaluation sets in ``folder``: itself when it holds ``query/`` and ``gallery/``,
    else its sub-folders that do, sorted by name.

    Raises:
        ValueError: neither ``folder`` nor any sub-folder is a set.
    """
    def is_set(path: Path) -> bool:
        return (path / "query").is_dir() and (path / "gallery").is_dir()

    folder = Path(folder)
    if is_set(folder):
        return [folder]
    sets = sorted(child for child in folder.iterdir() if is_set(child)) if folder.is_dir() else []
    if not sets:
        raise ValueError(f"{folder} is not a set (a folder holding query/ and gallery/) nor a folder of sets")
    return sets
