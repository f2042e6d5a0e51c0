"""A FAISS inner-product index over unit vectors, keyed by database ids, saved atomically."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdFingerprint:
    """A cheap summary of a set of ids, to tell whether an index matches the database."""

    count: int
    total: int
    maximum: int

    @classmethod
    def of(cls, ids: NDArray[np.int64]) -> IdFingerprint:
        """Summarize an array of ids."""
        ids = np.asarray(ids, dtype=np.int64)
        return cls(len(ids), int(ids.sum()), int(ids.max()) if len(ids) else 0)


class VectorIndex:
    """Exact cosine search over L2-normalized vectors; ids are database primary keys.

    The file name carries the embedder's model id, so vectors of another model are never
    mixed in. All methods are thread-safe.
    """

    def __init__(self, directory: Path, name: str, model_id: str, dim: int) -> None:
        safe_model = re.sub(r"[^A-Za-z0-9_.-]", "_", model_id)
        self.path = Path(directory) / f"{name}-{safe_model}.faiss"
        self.model_id = model_id
        self.dim = dim
        self._lock = threading.RLock()
        self._index = self._empty()

    def _empty(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> NDArray[np.int64]:
        """Return the ids held, in insertion order."""
        with self._lock:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def fingerprint(self) -> IdFingerprint:
        """Summarize the ids held."""
        return IdFingerprint.of(self.ids())

    @property
    def checksum_path(self) -> Path:
        """Return the file holding the SHA-256 of the index file (its ids and vectors)."""
        return self.path.with_name(self.path.name + ".sha256")

    def load(self) -> bool:
        """Read the index file if there is a usable one; return whether it was read.

        A file whose SHA-256 differs from the one recorded at its save (altered vectors or
        ids, a damaged file, or one saved without a checksum) is not used.
        """
        with self._lock:
            if not self.path.is_file():
                return False
            data = self.path.read_bytes()
            try:
                recorded = self.checksum_path.read_text().strip()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
                recorded = ""
            if not hmac.compare_digest(recorded, hashlib.sha256(data).hexdigest()):
                log.warning("ignoring index %s: its content does not match the checksum recorded "
                            "when it was saved (altered or damaged)", self.path)
                return False
            try:
                index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            except RuntimeError as exc:
                log.warning("ignoring unreadable index %s: %s", self.path, exc)
                return False
            if index.d != self.dim or not isinstance(index, faiss.IndexIDMap2):
                log.warning("ignoring index %s of dimension %d (want %d)", self.path, index.d, self.dim)
                return False
            self._index = index
            return True

    def save(self) -> None:
        """Write the index and then its SHA-256 to their files, each atomically (temporary file, rename).

        Raises:
            IndexPathError: the index or checksum path is taken by something not a file.
        """
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for path in (self.path, self.checksum_path):
                if path.exists() and not path.is_file():
                    raise IndexPathError(f"{path} is not a regular file: move it away "
                                         "(the index is rebuilt from the database)")
            data = faiss.serialize_index(self._index)
            _write_atomic(self.path, data)
            _write_atomic(self.checksum_path, (hashlib.sha256(data).hexdigest() + "\n").encode())

    def rebuild(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Replace the whole content with ``vectors`` (N, dim) under ``ids`` (N,), then save."""
        with self._lock:
            self._index = self._empty()
            self._add(ids, vectors)
            self.save()

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``vectors`` (N, dim) under new ``ids`` (N,), then save."""
        with self._lock:
            self._add(ids, vectors)
            self.save()

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove ``ids`` if present, save, and return how many were removed."""
        with self._lock:
            removed = int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))
            self.save()
            return removed

    def search(self, queries: NDArray[np.float32], k: int
               ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the scores and ids (Q, k') of each query's nearest vectors, k' = min(k, size).

        Raises:
            TypeError: ``queries`` is not a float32 (Q, dim) array.
        """
        queries = _check_vectors(queries, self.dim)
        with self._lock:
            k = min(k, len(self))
            if k == 0:
                return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
            scores, ids = self._index.search(queries, k)
        return scores, ids

    def _add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        vectors = _check_vectors(vectors, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (len(vectors),):
            raise ValueError(f"need one id per vector: {ids.shape} ids for {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids) or np.isin(ids, self.ids()).any():
            raise ValueError("ids must be new and distinct: the index already holds some of them")
        if len(ids):
            self._index.add_with_ids(vectors, ids)


class IndexPathError(OSError):
    """An index file cannot be written: its path is taken by a folder or another non-file."""


def _write_atomic(path: Path, data: object) -> None:
    """Write ``data`` (bytes or a uint8 array) to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(memoryview(data))  # type: ignore[arg-type]
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_vectors(vectors: NDArray[np.float32], dim: int) -> NDArray[np.float32]:
    if not (isinstance(vectors, np.ndarray) and vectors.dtype == np.float32
            and vectors.ndim == 2 and vectors.shape[1] == dim):
        raise TypeError(f"vectors must be a float32 array of shape (N, {dim})")
    return np.ascontiguousarray(vectors)


def unusable_index_paths(directory: Path) -> list[str]:
    """Describe each path in an index directory that is in the way of an index file (a folder, say)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        return [f"{directory} is not a folder: move it away (the indexes are rebuilt from the database)"]
    return [f"{path} is not a regular file: move it away (the index is rebuilt from the database)"
            for path in sorted(directory.glob("*.faiss*")) if not path.is_file()]
