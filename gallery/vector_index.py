"""FAISS inner-product indexes over unit vectors, keyed by database ids: a snapshot and a delta log.

An index ``<name>-<model>`` keeps three files in its directory:

- ``<name>-<model>.faiss``, the snapshot: a random name, then ids, vectors and (IVF)
  centroids and list numbers, in sections at fixed offsets (``_Sections``), with the ids also
  sorted for lookup;
- ``<name>-<model>.faiss.sha256``, the SHA-256 of each 256 KiB block of the snapshot, under
  one SHA-256 of them all, a line each; all are checked before the snapshot is read;
- ``<name>-<model>.faiss.log``, the delta log: every write since the snapshot, appended.

A write appends one record to the log, so its cost does not grow with the index. The log
starts with a header naming the snapshot it applies to and the end of the log that snapshot
folded in. Each record (vectors added, ids removed, or a generation mark) ends with
the SHA-256 of the header's digest, the record's offset and its bytes: an altered record, or
records moved, fail it. A failing last record (a writer killed mid-append) is dropped; a failing
record with more after it makes the files unusable, and the caller rebuilds them from the
database.

A removal also erases the removed vectors from the files at once: their rows in the snapshot
and in the log's records are overwritten with zeros, and the digests of the blocks and records
holding them recomputed (a zero row is skipped when read). Nothing of an erased person's
vectors stays in the index files.

When the log outgrows a fraction of the snapshot, the write that grew it folds it into a new
snapshot (compaction: files written beside and renamed into place). Another process holding the
index reads only the records appended since it last looked (``catch_up``), across a compaction
too: it finishes the old log through its open handle, then goes on with the new one.

Below ``ann_threshold`` vectors the index is exact (``IndexFlatIP`` under ``IndexIDMap2``, as it
always was); from it upwards it is an ``IndexIVFFlat`` (chosen over IVF-SQ8 and HNSW by
``benchmarks/index_scale.py``): vectors kept whole, so the scores of the hits are exact, and
removals supported. The layout is chosen when a snapshot is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import os
import re
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

ANN_THRESHOLD = 100_000  # vectors: exact search below, IVF at and above (REID_ANN_THRESHOLD)
COMPACT_FRACTION = 0.25  # fold the log into a new snapshot once it outgrows this share of the snapshot
COMPACT_MIN_BYTES = 4 << 20  # ... and this many bytes
MAX_NLIST = 4096  # IVF lists: about 2 sqrt(N), a power of two, at most this
TRAINING_PER_LIST = 64  # vectors sampled per list to train the IVF centroids
NPROBE = 48  # IVF lists searched per query at 512 lists, times sqrt(nlist / 512) (``nprobe_for``)
BLOCK = 1 << 18  # bytes of snapshot per checksum

_SNAPSHOT = struct.Struct("<8sIIQ32s")  # magic, dim, nlist (0: exact), count, a random name
_SNAPSHOT_MAGIC = b"REIDSNP1"
_SNAPSHOT_HEAD = 64
_LOG = struct.Struct("<8sIIq32s32s32s")  # magic, version, dim, generation, snapshot, follows, layout
_LOG_MAGIC = b"REIDVLOG"
_LOG_VERSION = 2
_DIGEST = 32
_LOG_HEAD = _LOG.size + _DIGEST
_RECORD = struct.Struct("<BxxxIq")  # kind, count of ids, generation (marks)
_ADD, _REMOVE, _MARK = 1, 2, 3
_NO_LOG = bytes(_DIGEST)


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


class IndexPathError(OSError):
    """An index file cannot be written: its path is taken by a folder or another non-file."""


class IndexOutOfStep(RuntimeError):
    """The index files were replaced by ones that do not follow this copy: read them again."""


@dataclass(frozen=True)
class _Sections:
    """Where each part of a snapshot file starts: head, centroids, ids, lists, vectors, sorted ids, their rows."""

    dim: int
    nlist: int
    count: int

    @property
    def centroids(self) -> int:
        return _SNAPSHOT_HEAD

    @property
    def ids(self) -> int:
        return self.centroids + 4 * self.nlist * self.dim

    @property
    def lists(self) -> int:
        return self.ids + 8 * self.count

    @property
    def vectors(self) -> int:
        return self.lists + (8 * self.count if self.nlist else 0)

    @property
    def sorted_ids(self) -> int:
        return self.vectors + 4 * self.dim * self.count

    @property
    def sorted_rows(self) -> int:
        return self.sorted_ids + 8 * self.count

    @property
    def size(self) -> int:
        return self.sorted_rows + 8 * self.count


@dataclass(frozen=True)
class _Header:
    """The head of a log: which snapshot it applies to and which log that snapshot folded in."""

    dim: int
    generation: int  # the last generation marked before the snapshot; -1: none
    snapshot: bytes  # the snapshot's random name
    follows: bytes  # ``_Log.position`` at the end of the log the snapshot folded in (zeros: none)
    layout: str  # the snapshot's index layout (``VectorIndex.layout``)

    def pack(self) -> bytes:
        body = _LOG.pack(_LOG_MAGIC, _LOG_VERSION, self.dim, self.generation, self.snapshot, self.follows,
                         self.layout.encode().ljust(_DIGEST, b"\0"))
        return body + hashlib.sha256(body).digest()

    @classmethod
    def unpack(cls, data: bytes) -> _Header | None:
        """Read a header; None if it is short, altered or of another format."""
        if len(data) != _LOG_HEAD:
            return None
        body, digest = data[:_LOG.size], data[_LOG.size:]
        if not hmac.compare_digest(hashlib.sha256(body).digest(), digest):
            return None
        magic, version, dim, generation, snapshot, follows, layout = _LOG.unpack(body)
        if magic != _LOG_MAGIC or version != _LOG_VERSION:
            return None
        return cls(dim, generation, snapshot, follows, layout.rstrip(b"\0").decode(errors="replace"))


Record = tuple[int, int, NDArray[np.int64], "NDArray[np.float32] | None"]


class _Log:
    """An open delta log: its handle, which file it is, where its last good record ends.

    It also remembers where each id added since the snapshot sits in it, to erase the vector.
    """

    def __init__(self, fd: int, header: _Header, dim: int) -> None:
        self.fd = fd
        self.header = header
        self.dim = dim
        stat = os.fstat(fd)
        self.identity = (stat.st_dev, stat.st_ino)
        self.key = header.pack()[_LOG.size:]  # the header's digest: binds each record to this log
        self.end = _LOG_HEAD
        self._added: list[tuple[int, NDArray[np.int64]]] = []  # (record offset, ids) of each ADD record
        self._finalizer = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._finalizer()

    @property
    def position(self) -> bytes:
        """Return a digest naming this log read up to ``end`` (what a compaction's new log follows)."""
        return hashlib.sha256(self.key + self.end.to_bytes(8, "little")).digest()

    def replaced(self, path: Path) -> bool:
        """Return whether ``path`` is no longer this file (a compaction or rebuild renamed another in)."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self.identity

    def _digest(self, offset: int, record: bytes | bytearray | memoryview) -> bytes:
        return hashlib.sha256(self.key + offset.to_bytes(8, "little") + record).digest()

    def append(self, record: bytes) -> None:
        """Write ``record`` after the last good one, cutting off a torn tail first."""
        size = os.fstat(self.fd).st_size
        if size != self.end:
            log.warning("dropping %d bytes after the last whole record of an index log (a torn write)",
                        size - self.end)
            os.ftruncate(self.fd, self.end)
        os.pwrite(self.fd, record + self._digest(self.end, record), self.end)
        kind, count, _ = _RECORD.unpack_from(record)
        if kind == _ADD:
            self._added.append((self.end, np.frombuffer(record, np.int64, count, _RECORD.size).copy()))
        self.end += len(record) + _DIGEST

    def records(self) -> tuple[list[Record], str]:
        """Read the whole records after ``end``, moving ``end`` past them.

        Returns:
            The records (kind, generation, ids, vectors) and how the reading stopped: ``"end"``,
            ``"torn"`` (an incomplete or failing last record, cut off by the next append) or
            ``"damaged"`` (a failing record with data after it).
        """
        size = os.fstat(self.fd).st_size
        found: list[Record] = []
        while self.end < size:
            head = os.pread(self.fd, _RECORD.size, self.end)
            if len(head) < _RECORD.size:
                return found, "torn"
            kind, count, generation = _RECORD.unpack(head)
            width = {_ADD: 8 + 4 * self.dim, _REMOVE: 8, _MARK: 0}.get(kind)
            if width is None or (kind == _MARK and count):
                return found, "torn" if size - self.end <= _RECORD.size + _DIGEST else "damaged"
            length = _RECORD.size + count * width
            if self.end + length + _DIGEST > size:
                return found, "torn"
            data = os.pread(self.fd, length + _DIGEST, self.end)
            if len(data) != length + _DIGEST or not hmac.compare_digest(
                    self._digest(self.end, memoryview(data)[:length]), data[length:]):
                return found, "torn" if self.end + length + _DIGEST == size else "damaged"
            ids = np.frombuffer(data, np.int64, count, _RECORD.size)
            vectors = None
            if kind == _ADD:
                vectors = np.frombuffer(data, np.float32, count * self.dim,
                                        _RECORD.size + 8 * count).reshape(count, self.dim)
                self._added.append((self.end, ids.copy()))  # not a view: the record's vectors go
            found.append((kind, generation, ids, vectors))
            self.end += length + _DIGEST
        return found, "end"

    def erase(self, ids: NDArray[np.int64]) -> None:
        """Overwrite the vectors of ``ids`` in this log's ADD records with zeros, and re-digest those records."""
        if not self._added:
            return
        held = np.concatenate([added for _, added in self._added])
        record_of = np.repeat(np.arange(len(self._added)), [len(added) for _, added in self._added])
        for record in np.unique(record_of[np.isin(held, ids)]).tolist():
            offset, added = self._added[record]
            count = len(added)
            length = _RECORD.size + count * (8 + 4 * self.dim)
            data = bytearray(os.pread(self.fd, length, offset))
            vectors = np.frombuffer(data, np.float32, count * self.dim, _RECORD.size + 8 * count)
            vectors.reshape(count, self.dim)[np.isin(added, ids)] = 0.0
            os.pwrite(self.fd, bytes(data) + self._digest(offset, data), offset)


class VectorIndex:
    """Cosine search over L2-normalized vectors; ids are database primary keys.

    Exact below ``ann_threshold`` vectors, IVF from it upwards (see the module's docstring).
    The file name carries the embedder's model id, so vectors of another model are never
    mixed in. All methods are thread-safe; processes sharing the files must take turns to write
    (``gallery.index_sync.SharedIndex`` holds a lock file), while any may ``catch_up`` at any time.
    """

    def __init__(self, directory: Path, name: str, model_id: str, dim: int, *,
                 ann_threshold: int = ANN_THRESHOLD, nprobe: int | None = None,
                 compact_fraction: float = COMPACT_FRACTION, compact_min_bytes: int = COMPACT_MIN_BYTES) -> None:
        safe_model = re.sub(r"[^A-Za-z0-9_.-]", "_", model_id)
        self.path = Path(directory) / f"{name}-{safe_model}.faiss"
        self.model_id = model_id
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.nprobe = nprobe  # None: nprobe_for(nlist)
        self.compact_fraction = compact_fraction
        self.compact_min_bytes = compact_min_bytes
        self.generation: int | None = None  # the last generation marked in the files read or written
        self._lock = threading.RLock()
        self._index: Any = self._flat()
        self._max_id = -1  # no held id is larger (an upper bound: removals leave it)
        self._log: _Log | None = None
        self._snapshot: _Sections | None = None
        self._blocks: list[bytes] = []  # the snapshot's block digests
        self._deferred = 0  # inside ``compacting_after``: writes leave compaction to its end

    def _flat(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def checksum_path(self) -> Path:
        """Return the file holding the SHA-256s of the snapshot (its ids and vectors)."""
        return self.path.with_name(self.path.name + ".sha256")

    @property
    def log_path(self) -> Path:
        """Return the delta log: the writes since the snapshot."""
        return self.path.with_name(self.path.name + ".log")

    @property
    def layout(self) -> str:
        """Return ``"flat"``, or ``"ivf<nlist>-<digest of the centroids>"`` for an IVF index."""
        with self._lock:
            if not isinstance(self._index, faiss.IndexIVFFlat):
                return "flat"
            return f"ivf{self._index.nlist}-{hashlib.sha256(_centroids(self._index).tobytes()).hexdigest()[:16]}"

    def ids(self) -> NDArray[np.int64]:
        """Return the ids held (in insertion order while exact, by IVF list above the threshold)."""
        with self._lock:
            if isinstance(self._index, faiss.IndexIVFFlat):
                return np.concatenate([ids for _, ids, _ in _ivf_lists(self._index, vectors=False)] or
                                      [np.zeros(0, np.int64)])
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def fingerprint(self) -> IdFingerprint:
        """Summarize the ids held."""
        return IdFingerprint.of(self.ids())

    # -- reading the files -------------------------------------------------------------------

    def load(self) -> bool:
        """Read the snapshot and apply its log, if both are usable; return whether they were read.

        Not used (and logged): a snapshot whose SHA-256s differ from those recorded when it was
        written (altered vectors or ids, damage, or no checksum), one of another dimension, a
        log missing or made for another snapshot, and a log damaged before its last record. A
        torn last record is dropped. On False the index is left empty.
        """
        with self._lock:
            self._reset()
            if not self.path.is_file():
                return False
            read = self._read_snapshot()
            if read is None:
                return False
            index, sections, blocks, name = read
            try:
                fd = os.open(self.log_path, os.O_RDWR)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                log.warning("ignoring index %s: its log %s is missing", self.path, self.log_path.name)
                return False
            header = _Header.unpack(os.pread(fd, _LOG_HEAD, 0))
            if header is None or header.snapshot != name or header.dim != self.dim:
                os.close(fd)
                log.warning("ignoring index %s: its log %s belongs to another snapshot or is damaged",
                            self.path, self.log_path.name)
                return False
            self._index, self._snapshot, self._blocks = index, sections, blocks
            self._max_id = int(self.ids().max(initial=-1))
            self._log = _Log(fd, header, self.dim)
            self.generation = header.generation if header.generation >= 0 else None
            status = self._replay()
            if status == "damaged":
                log.warning("ignoring index %s: its log %s is damaged or altered at byte %d",
                            self.path, self.log_path.name, self._log.end)
                self._reset()
                return False
            if status == "torn":  # while catching up it may be a record being written: not logged there
                log.info("index log %s ends in a torn record at byte %d: dropped", self.log_path.name, self._log.end)
            return True

    def catch_up(self) -> bool:
        """Apply the records other processes appended since this copy last read the log.

        Returns:
            False when the log was replaced by one that does not follow this copy's (a rebuild,
            or a compaction that changed the layout), or fails a check (it may be being erased
            in: try again under the writers' lock, then ``load``).
        """
        with self._lock:
            if self._log is None or self._replay() == "damaged":
                return False
            if not self._log.replaced(self.log_path):
                return True
            try:  # compacted: the old log is read to its end; go on with the new one if it follows
                fd = os.open(self.log_path, os.O_RDWR)
            except FileNotFoundError:
                return False
            header = _Header.unpack(os.pread(fd, _LOG_HEAD, 0))
            if (header is None or header.follows != self._log.position or header.dim != self.dim
                    or header.layout != self.layout):
                os.close(fd)
                return False
            self._log.close()
            self._log, self._snapshot, self._blocks = _Log(fd, header, self.dim), None, []
            return self._replay() != "damaged"

    def _read_snapshot(self) -> tuple[Any, _Sections, list[bytes], bytes] | None:
        """Check the snapshot against its recorded SHA-256s, then read it; None if unusable."""
        try:
            recorded = self.checksum_path.read_text().split()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
            recorded = []
        blocks = []
        with open(self.path, "rb") as handle:
            while block := handle.read(BLOCK):
                blocks.append(hashlib.sha256(block).digest())
        if not hmac.compare_digest(" ".join(recorded), " ".join([_top(blocks).hex()] + [b.hex() for b in blocks])):
            log.warning("ignoring index %s: its content does not match the checksum recorded "
                        "when it was saved (altered or damaged)", self.path)
            return None
        with open(self.path, "rb") as handle:
            head = handle.read(_SNAPSHOT.size).ljust(_SNAPSHOT.size, b"\0")
            magic, dim, nlist, count, name = _SNAPSHOT.unpack(head)
            sections = _Sections(dim, nlist, count)
            if magic != _SNAPSHOT_MAGIC or dim != self.dim or sections.size != self.path.stat().st_size:
                log.warning("ignoring index %s: not an index of dimension %d in this format", self.path, self.dim)
                return None
            return self._index_from(handle, sections), sections, blocks, name

    def _index_from(self, handle: Any, sections: _Sections) -> Any:
        """Build the in-memory index from an open, checked snapshot file, a slice of rows at a time."""
        dim, count = sections.dim, sections.count
        if sections.nlist:
            handle.seek(sections.centroids)
            centroids = np.fromfile(handle, np.float32, sections.nlist * dim).reshape(-1, dim)
            index = _empty_ivf(centroids)
        else:
            index = self._flat()
        step = max(1, (64 << 20) // (4 * dim))
        for start in range(0, count, step):
            n = min(step, count - start)
            handle.seek(sections.ids + 8 * start)
            ids = np.fromfile(handle, np.int64, n)
            handle.seek(sections.vectors + 4 * dim * start)
            vectors = np.fromfile(handle, np.float32, n * dim).reshape(n, dim)
            kept = vectors.any(axis=1)  # zero rows were erased
            if sections.nlist:
                handle.seek(sections.lists + 8 * start)
                lists = np.ascontiguousarray(np.fromfile(handle, np.int64, n)[kept])
                _add_to_lists(index, ids[kept], vectors[kept], lists)
            else:
                index.add_with_ids(np.ascontiguousarray(vectors[kept]), np.ascontiguousarray(ids[kept]))
        return index

    def _replay(self) -> str:
        """Apply the log's records after the last one read; return how the reading stopped."""
        assert self._log is not None
        records, status = self._log.records()
        for kind, generation, ids, vectors in records:
            if kind == _ADD:
                assert vectors is not None
                kept = vectors.any(axis=1)  # zero rows were erased
                self._insert(ids[kept], vectors[kept])
            elif kind == _REMOVE:
                self._delete(ids)
            else:
                self.generation = generation
        return status

    def _reset(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log, self._index, self._max_id, self.generation = None, self._flat(), -1, None
        self._snapshot, self._blocks = None, []

    def close(self) -> None:
        """Close the log's handle (the content stays searchable; only ``load`` or ``rebuild`` write again)."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    # -- writing -----------------------------------------------------------------------------

    def save(self) -> None:
        """Write a snapshot of the content, its SHA-256s, and an empty log after it, each atomically.

        The layout is chosen here: exact below the threshold, IVF at or above it (retrained
        once the index has grown fourfold since its centroids were trained).

        Raises:
            IndexPathError: a path of the index is taken by something not a file.
        """
        with self._lock:
            follows = (self._log.position if self._log is not None and not self._log.replaced(self.log_path)
                       else _NO_LOG)
            self._write_files(follows)

    def rebuild(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Replace the whole content with ``vectors`` (N, dim) under ``ids`` (N,), then save."""
        with self._lock:
            vectors = _check_vectors(vectors, self.dim)
            ids = _check_ids(ids, len(vectors))
            if len(np.unique(ids)) != len(ids):
                raise ValueError("ids must be distinct")
            self._index, self.generation = self._layout_for(ids, vectors), None
            self._max_id = int(ids.max(initial=-1))
            self._write_files(_NO_LOG)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``vectors`` (N, dim) under new ``ids`` (N,): append them to the log, then hold them.

        Raises:
            TypeError: ``vectors`` is not a float32 (N, dim) array.
            ValueError: an id is repeated or already held.
            IndexOutOfStep: another process replaced the files meanwhile.
        """
        with self._lock:
            vectors = _check_vectors(vectors, self.dim)
            ids = _check_ids(ids, len(vectors))
            self._follow()
            if len(np.unique(ids)) != len(ids) or (len(ids) and ids.min() <= self._max_id
                                                   and np.isin(ids, self.ids()).any()):
                raise ValueError("ids must be new and distinct: the index already holds some of them")
            if not len(ids):
                return
            self._append(_RECORD.pack(_ADD, len(ids), 0) + ids.tobytes() + vectors.tobytes())
            self._insert(ids, vectors)
            self._after_write()

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove ``ids`` if present, erasing their vectors from the files; return how many were removed.

        Raises:
            IndexOutOfStep: another process replaced the files meanwhile.
        """
        with self._lock:
            ids = np.unique(np.asarray(ids, dtype=np.int64))
            self._follow()
            if not len(ids):
                return 0
            if self._log is not None:  # erased first: a crash half-way leaves files that fail their checks
                self._erase_from_snapshot(ids)
                self._log.erase(ids)
            self._append(_RECORD.pack(_REMOVE, len(ids), 0) + ids.tobytes())
            removed = self._delete(ids)
            self._after_write()
            return removed

    def mark(self, generation: int) -> None:
        """Record in the log that the content now reflects the database's ``generation`` of the index."""
        with self._lock:
            self._follow()
            self._append(_RECORD.pack(_MARK, 0, generation))
            self.generation = generation

    def _follow(self) -> None:
        """Before a write: read what others appended; refuse if the files no longer follow this copy."""
        if self._log is not None and not self.catch_up():
            raise IndexOutOfStep(f"{self.log_path} was replaced or damaged since this copy read it: "
                                 "read the index again")

    def _append(self, record: bytes) -> None:
        if self._log is None:  # nothing written by this copy yet: a snapshot of the content first
            self._write_files(_NO_LOG)
        assert self._log is not None
        self._log.append(record)

    @contextlib.contextmanager
    def compacting_after(self) -> Iterator[None]:
        """Leave the compaction that writes inside may call for to the end of the block.

        ``SharedIndex`` marks the generation inside, so that other processes, which catch up to
        the mark without the lock, need not wait for a compaction.
        """
        with self._lock:
            self._deferred += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferred -= 1
        with self._lock:  # not after a failure: the caller's exception goes up as it was
            if not self._deferred and self._log is not None and not self._log.replaced(self.log_path):
                self._after_write()

    def _after_write(self) -> None:
        """Compact when the log has outgrown its share of the snapshot, or the index its exact layout."""
        assert self._log is not None
        if self._deferred:
            return
        snapshot = self._snapshot.size if self._snapshot is not None else self.path.stat().st_size
        grown = self._log.end - _LOG_HEAD > max(self.compact_min_bytes, self.compact_fraction * snapshot)
        if grown or (len(self) >= self.ann_threshold and not isinstance(self._index, faiss.IndexIVFFlat)):
            self.save()

    def _write_files(self, follows: bytes) -> None:
        """Write snapshot, checksums, then a fresh log; a crash between them leaves files ``load`` refuses."""
        self._check_paths()
        self._index = self._relayout()
        name = os.urandom(_DIGEST)
        sections, blocks = _write_snapshot(self._index, self.dim, self.path, name)
        _write_atomic(self.checksum_path, _checksum_text(blocks))
        header = _Header(self.dim, -1 if self.generation is None else self.generation, name, follows, self.layout)
        _write_atomic(self.log_path, header.pack())
        fd = os.open(self.log_path, os.O_RDWR)
        if self._log is not None:
            self._log.close()
        self._log, self._snapshot, self._blocks = _Log(fd, header, self.dim), sections, blocks

    def _erase_from_snapshot(self, ids: NDArray[np.int64]) -> None:
        """Overwrite the snapshot rows of ``ids`` with zeros and record the changed blocks' digests."""
        if self._snapshot is None:  # this copy follows a log whose snapshot it never read: look it up
            found = self._snapshot_in_step()
            if found is None:
                return
            self._snapshot, self._blocks = found
        sections = self._snapshot
        if not sections.count:
            return
        fd = os.open(self.path, os.O_RDWR)
        try:
            rows = _snapshot_rows(fd, sections, ids)
            if not len(rows):
                return
            row_bytes = 4 * sections.dim
            starts = sections.vectors + rows * row_bytes
            for start in starts.tolist():
                os.pwrite(fd, bytes(row_bytes), start)
            touched = np.unique(np.concatenate([starts // BLOCK, (starts + row_bytes - 1) // BLOCK])).tolist()
            for block in touched:
                self._blocks[block] = hashlib.sha256(os.pread(fd, BLOCK, block * BLOCK)).digest()
        finally:
            os.close(fd)
        line = 2 * _DIGEST + 1  # the checksum file's lines in place: the top, then each block's
        with open(self.checksum_path, "r+b") as handle:
            handle.write(_top(self._blocks).hex().encode())
            for block in touched:
                handle.seek(line * (block + 1))
                handle.write(self._blocks[block].hex().encode())

    def _snapshot_in_step(self) -> tuple[_Sections, list[bytes]] | None:
        """Return the sections and block digests of the snapshot file this log applies to, if it is that one."""
        assert self._log is not None
        try:
            blocks = [bytes.fromhex(line) for line in self.checksum_path.read_text().split()[1:]]
            with open(self.path, "rb") as handle:
                magic, dim, nlist, count, name = _SNAPSHOT.unpack(handle.read(_SNAPSHOT.size))
        except (OSError, ValueError, struct.error):
            return None
        if magic != _SNAPSHOT_MAGIC or dim != self.dim or name != self._log.header.snapshot:
            return None
        return _Sections(dim, nlist, count), blocks

    def _check_paths(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.path, self.checksum_path, self.log_path):
            if path.exists() and not path.is_file():
                raise IndexPathError(f"{path} is not a regular file: move it away "
                                     "(the index is rebuilt from the database)")

    # -- layout ------------------------------------------------------------------------------

    def _relayout(self) -> Any:
        """Return the index in the layout its size calls for (the same object if it already is)."""
        count, index = len(self), self._index
        ivf = isinstance(index, faiss.IndexIVFFlat)
        if count < self.ann_threshold and not ivf:
            return index
        if count >= self.ann_threshold and ivf and 2 * index.nlist > nlist_for(count):
            return index
        if ivf:
            parts = list(_ivf_lists(index))
            ids = np.concatenate([p[1] for p in parts] or [np.zeros(0, np.int64)])
            vectors = np.concatenate([p[2] for p in parts] or [np.zeros((0, self.dim), np.float32)])
        else:
            ids, vectors = _flat_contents(index, self.dim)
        return self._layout_for(ids, vectors)

    def _layout_for(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> Any:
        """Build the index for these vectors: exact below the threshold, else a freshly trained IVF."""
        if len(ids) < self.ann_threshold:
            index = self._flat()
            if len(ids):
                index.add_with_ids(vectors, ids)
            return index
        nlist = nlist_for(len(ids))
        quantizer = faiss.IndexFlatIP(self.dim)
        trainer = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        trainer.cp.niter = 10
        trainer.cp.max_points_per_centroid = TRAINING_PER_LIST
        sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), TRAINING_PER_LIST * nlist),
                                                  replace=False)
        trainer.train(vectors[np.sort(sample)])
        index = _empty_ivf(_centroids(trainer))
        index.add_with_ids(vectors, ids)
        log.info("built %s (%d vectors) as IVF with %d lists", self.path.name, len(ids), nlist)
        return index

    def _insert(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids))
            self._max_id = max(self._max_id, int(ids.max()))

    def _delete(self, ids: NDArray[np.int64]) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if isinstance(self._index, faiss.IndexIVFFlat):  # the hashtable direct map wants an id array
            return int(self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))
        return int(self._index.remove_ids(ids))  # faiss's Python wrapper takes an id array

    # -- searching ---------------------------------------------------------------------------

    def search(self, queries: NDArray[np.float32], k: int
               ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the scores and ids (Q, k') of each query's nearest vectors, k' = min(k, size).

        IVF searches ``nprobe`` lists (``nprobe_for``), more when ``k`` is large (about twice
        ``k`` vectors visited), and all of them below the threshold (a shrunk index is searched exactly);
        a row may then end in fewer than k' hits, padded with id -1.

        Raises:
            TypeError: ``queries`` is not a float32 (Q, dim) array.
        """
        queries = _check_vectors(queries, self.dim)
        with self._lock:
            k = min(k, len(self))
            if k == 0:
                return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
            if not isinstance(self._index, faiss.IndexIVFFlat):
                scores, ids = self._index.search(queries, k)
                return scores, ids
            nlist = self._index.nlist
            least = nprobe_for(nlist) if self.nprobe is None else self.nprobe
            nprobe = nlist if len(self) < self.ann_threshold else min(
                nlist, max(least, math.ceil(2 * k * nlist / len(self))))
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe
            scores, ids = self._index.search(queries, k, params=params)
        return scores, ids


def use_threads(count: int) -> None:
    """Set the threads FAISS uses in this process (OpenMP's, for every index).

    A server answering single queries from many threads wants 1: FAISS's parallel regions gain
    nothing there, and on a busy machine their idle threads' spinning costs tens of milliseconds
    a search or add (``benchmarks/index_scale.py``).
    """
    faiss.omp_set_num_threads(count)


def nprobe_for(nlist: int) -> int:
    """Return the IVF lists to search per query: ``NPROBE`` at 512 lists, growing with sqrt(nlist).

    Measured on ``benchmarks/index_scale.py``'s identities x views, recall@10: 0.970 at 100k
    vectors (512 lists, 48 searched), 0.967 at 1M (2048, 96), 0.968 at 10M (4096, 136); a fixed
    64 gave 0.948 at 1M.
    """
    return min(nlist, math.ceil(NPROBE * math.sqrt(nlist / 512)))


def nlist_for(count: int) -> int:
    """Return the IVF list count for ``count`` vectors: about 2 sqrt(N), a power of two, at most
    ``MAX_NLIST``, with at least 39 vectors per list (faiss's floor for training)."""
    nlist = 2 ** round(math.log2(2 * math.sqrt(max(count, 1))))
    while nlist > 1 and (nlist > MAX_NLIST or 39 * nlist > count):
        nlist //= 2
    return nlist


def _snapshot_rows(fd: int, sections: _Sections, ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the rows of the snapshot open as ``fd`` that hold ``ids`` (those it holds), by its sorted ids."""
    count = sections.count
    if len(ids) > 64:  # many: read the sorted ids whole
        held = np.frombuffer(os.pread(fd, 8 * count, sections.sorted_ids), np.int64)
        at = np.minimum(np.searchsorted(held, ids), count - 1)
        places = at[held[at] == ids]
    else:  # few: a binary search each, on the file
        def held_at(place: int) -> int:
            return int.from_bytes(os.pread(fd, 8, sections.sorted_ids + 8 * place), "little", signed=True)
        found = []
        for wanted in ids.tolist():
            low, high = 0, count
            while low < high:
                middle = (low + high) // 2
                if held_at(middle) < wanted:
                    low = middle + 1
                else:
                    high = middle
            if low < count and held_at(low) == wanted:
                found.append(low)
        places = np.array(found, np.int64)
    if len(places) > 64:
        return np.frombuffer(os.pread(fd, 8 * count, sections.sorted_rows), np.int64)[places]
    return np.array([int.from_bytes(os.pread(fd, 8, sections.sorted_rows + 8 * place), "little", signed=True)
                     for place in places.tolist()], np.int64)


def _top(blocks: list[bytes]) -> bytes:
    """Return the SHA-256 over a snapshot's block digests: the snapshot's digest."""
    return hashlib.sha256(b"".join(blocks)).digest()


def _checksum_text(blocks: list[bytes]) -> bytes:
    return "\n".join([_top(blocks).hex()] + [block.hex() for block in blocks]).encode() + b"\n"


def _centroids(index: Any) -> NDArray[np.float32]:
    quantizer: Any = faiss.downcast_index(index.quantizer)
    return faiss.rev_swig_ptr(quantizer.get_xb(), quantizer.ntotal * index.d).reshape(-1, index.d).copy()


def _empty_ivf(centroids: NDArray[np.float32]) -> Any:
    """Return an empty IVF-Flat index over these centroids, removals by id through a hashtable."""
    nlist, dim = centroids.shape
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(np.ascontiguousarray(centroids))
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    # Removals without scanning every list. DirectMap is in faiss's module, not in its stubs.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    return index


def _add_to_lists(index: Any, ids: NDArray[np.int64], vectors: NDArray[np.float32], lists: NDArray[np.int64]) -> None:
    """Add vectors to the IVF lists recorded for them (no quantizer search)."""
    if len(ids):
        ids, vectors = np.ascontiguousarray(ids), np.ascontiguousarray(vectors)
        index.add_core(len(ids), faiss.swig_ptr(vectors), faiss.swig_ptr(ids), faiss.swig_ptr(lists))


def _ivf_lists(index: Any, *, vectors: bool = True
               ) -> Iterator[tuple[int, NDArray[np.int64], NDArray[np.float32]]]:
    """Yield the number, ids (n,) and, if asked, vectors (n, d) of each non-empty list of an IVF-Flat index."""
    lists = index.invlists
    empty = np.zeros((0, index.d), np.float32)
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size:
            ids = faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64)
            held = (faiss.rev_swig_ptr(lists.get_codes(number), size * index.code_size).view(np.float32)
                    .reshape(size, index.d).copy() if vectors else empty)
            yield number, ids, held


def _flat_contents(index: Any, dim: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    flat: Any = faiss.downcast_index(index.index)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * dim).reshape(-1, dim).copy()
    return faiss.vector_to_array(index.id_map).astype(np.int64), vectors


def _write_snapshot(index: Any, dim: int, path: Path, name: bytes) -> tuple[_Sections, list[bytes]]:
    """Write ``index`` to ``path`` through a temporary file and a rename, a list at a time.

    Returns:
        Its sections and the SHA-256 of each ``BLOCK`` bytes.
    """
    ivf = isinstance(index, faiss.IndexIVFFlat)
    sections = _Sections(dim, index.nlist if ivf else 0, int(index.ntotal))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as handle:
            handle.write(_SNAPSHOT.pack(_SNAPSHOT_MAGIC, dim, sections.nlist, sections.count, name)
                         .ljust(_SNAPSHOT_HEAD, b"\0"))
            handle.truncate(sections.size)
            if ivf:
                handle.seek(sections.centroids)
                handle.write(_centroids(index).tobytes())
                parts: Iterable[tuple[int, NDArray[np.int64], NDArray[np.float32]]] = _ivf_lists(index)
            else:
                parts = [(0, *_flat_contents(index, dim))]
            row, all_ids = 0, []
            for number, ids, vectors in parts:
                handle.seek(sections.ids + 8 * row)
                handle.write(ids.tobytes())
                if ivf:
                    handle.seek(sections.lists + 8 * row)
                    handle.write(np.full(len(ids), number, np.int64).tobytes())
                handle.seek(sections.vectors + 4 * dim * row)
                handle.write(np.ascontiguousarray(vectors).tobytes())
                all_ids.append(ids)
                row += len(ids)
            ordered = np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64)
            rows = np.argsort(ordered, kind="stable")
            handle.seek(sections.sorted_ids)
            handle.write(ordered[rows].tobytes())
            handle.write(rows.astype(np.int64).tobytes())
            handle.flush()
            handle.seek(0)
            blocks = []
            while block := handle.read(BLOCK):
                blocks.append(hashlib.sha256(block).digest())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return sections, blocks


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_vectors(vectors: NDArray[np.float32], dim: int) -> NDArray[np.float32]:
    if not (isinstance(vectors, np.ndarray) and vectors.dtype == np.float32
            and vectors.ndim == 2 and vectors.shape[1] == dim):
        raise TypeError(f"vectors must be a float32 array of shape (N, {dim})")
    return np.ascontiguousarray(vectors)


def _check_ids(ids: NDArray[np.int64], count: int) -> NDArray[np.int64]:
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (count,):
        raise ValueError(f"need one id per vector: {ids.shape} ids for {count} vectors")
    return ids


def unusable_index_paths(directory: Path) -> list[str]:
    """Describe each path in an index directory that is in the way of an index file (a folder, say)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        return [f"{directory} is not a folder: move it away (the indexes are rebuilt from the database)"]
    return [f"{path} is not a regular file: move it away (the index is rebuilt from the database)"
            for path in sorted(directory.glob("*.faiss*")) if not path.is_file()]
