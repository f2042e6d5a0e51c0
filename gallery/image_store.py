"""Image files under the data directory, named by content hash and written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from base.images import make_thumbnail

THUMBNAIL_HEIGHT = 160  # pixels


class ImageStore:
    """Stores image bytes at ``root/<sha[:2]>/<sha>.<ext>``; paths returned are relative.

    Thumbnails are made once, on first request, and kept beside the store under
    ``thumbnails/<root name>/``; a file's thumbnail is removed with it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.thumbnails = self.root.parent / "thumbnails" / self.root.name

    def thumbnail(self, relative: str) -> bytes:
        """Return a stored image's JPEG thumbnail, ``THUMBNAIL_HEIGHT`` pixels high, making it on first use.

        Raises:
            FileNotFoundError: no such stored file. ImageError: it is not a decodable image.
        """
        path = self._thumbnail_path(relative)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = make_thumbnail(self.read(relative), THUMBNAIL_HEIGHT)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        if not self.path(relative).is_file():  # the image was deleted meanwhile: leave nothing of it
            path.unlink(missing_ok=True)
        return data

    def _thumbnail_path(self, relative: str) -> Path:
        return self.thumbnails / f"{relative}.jpg"

    def put(self, data: bytes, sha256: str, extension: str) -> tuple[str, bool]:
        """Write ``data`` unless already stored.

        Returns:
            Its path relative to ``root``, and whether this call created the file.
        """
        relative = f"{sha256[:2]}/{sha256}{extension}"
        target = self.root / relative
        if target.is_file():
            return relative, False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return relative, True

    def remove_unreferenced(self, referenced: set[str]) -> int:
        """Delete the stored files whose relative path is not in ``referenced``; return how many."""
        orphans = [p for p in self.root.glob("*/*")
                   if p.is_file() and f"{p.parent.name}/{p.name}" not in referenced]
        for path in orphans:
            path.unlink(missing_ok=True)
        for path in self.thumbnails.glob("*/*"):  # thumbnails of files deleted by a killed process
            if path.suffix == ".tmp" or f"{path.parent.name}/{path.name[:-4]}" not in referenced:
                path.unlink(missing_ok=True)
        return len(orphans)

    def path(self, relative: str) -> Path:
        """Return the absolute path of a stored file."""
        return self.root / relative

    def read(self, relative: str) -> bytes:
        """Return a stored file's bytes."""
        return self.path(relative).read_bytes()

    def remove(self, relative: str) -> bool:
        """Delete a stored file and its thumbnail; return whether the file existed."""
        self._thumbnail_path(relative).unlink(missing_ok=True)
        try:
            self.path(relative).unlink()
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def staged(self, rollback: Callable[[], None]) -> Iterator[Callable[[bytes, str, str], str]]:
        """Yield a ``put`` that returns the stored path and remembers the files it created.

        If the block raises, ``rollback`` runs (the caller's transaction) and those files are
        removed, so a failed write leaves neither rows nor files behind.
        """
        written: list[str] = []

        def put(data: bytes, sha256: str, extension: str) -> str:
            stored, created = self.put(data, sha256, extension)
            if created:
                written.append(stored)
            return stored

        try:
            yield put
        except Exception:
            rollback()
            for stored in written:
                self.remove(stored)
            raise
