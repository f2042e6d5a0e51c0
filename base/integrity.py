"""SHA-256 digests of model files, written at export and checked before a model loads."""

from __future__ import annotations

import hashlib
from pathlib import Path


class IntegrityError(ValueError):
    """A file's content is not the content its digest was recorded for."""


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str) -> None:
    """Check that the file at ``path`` has the SHA-256 ``expected``.

    Raises:
        IntegrityError: it has another digest (a damaged or replaced file).
    """
    actual = file_sha256(path)
    if actual != expected:
        raise IntegrityError(f"{path} has SHA-256 {actual[:16]}..., but its metadata records "
                             f"{expected[:16]}...: the file is damaged or was replaced; export the model again")
