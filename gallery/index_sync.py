"""Making a FAISS index match the database, which is the source of truth, in every process."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gallery.file_lock import exclusive_lock
from gallery.models import IndexState, unpack_vectors
from gallery.vector_index import ANN_THRESHOLD, IdFingerprint, VectorIndex

log = logging.getLogger(__name__)


def sync_index(session: Session, index: VectorIndex, rows: sa.Select) -> bool:
    """Load ``index`` from its file if it holds exactly the ids of ``rows``, else rebuild it.

    Args:
        rows: a select of two columns, ``(id, vector bytes)``, for the index's model.

    Returns:
        Whether the index was rebuilt rather than read from its file.
    """
    subquery = rows.subquery()
    ids = subquery.c[0]
    count, total, maximum = session.execute(
        sa.select(sa.func.count(ids), sa.func.coalesce(sa.func.sum(ids), 0),
                  sa.func.coalesce(sa.func.max(ids), 0))).one()
    expected = IdFingerprint(int(count), int(total), int(maximum))
    if index.load() and index.fingerprint() == expected:
        return False
    log.info("rebuilding %s from the database (%d vectors)", index.path.name, expected.count)
    found = session.execute(rows).all()
    index.rebuild(np.array([row[0] for row in found], dtype=np.int64),
                  unpack_vectors([row[1] for row in found], index.dim))
    return True


def read_generation(session: Session, name: str) -> int:
    """Return the generation of index ``name`` as committed in the database (0 if it has no row).

    Pending objects in ``session`` are not flushed by this read.
    """
    with session.no_autoflush:
        return int(session.scalar(sa.select(IndexState.generation).where(IndexState.name == name)) or 0)


def raise_generation(session: Session, name: str) -> int:
    """Raise index ``name``'s generation in the session's transaction; return the new value.

    Call it in the transaction that changes the index's content, so both commit together. The
    UPDATE also takes the row's write lock, which queues the writers of one index until commit.
    """
    result = session.execute(sa.update(IndexState).where(IndexState.name == name)
                             .values(generation=IndexState.generation + 1))
    updated = cast("sa.CursorResult[Any]", result).rowcount  # an UPDATE's result is a cursor's
    if not updated:  # a database created without migration 0003's rows
        session.add(IndexState(name=name, generation=1))
        session.flush()
    return read_generation(session, name)


class SharedIndex:
    """One process's copy of a FAISS index, kept in step with the database and other processes.

    The protocol, for every process that serves or changes the index:

    - each write that changes the index's content raises the index's generation in
      ``index_state`` in its own transaction (``commit``);
    - a process remembers the generation its copy reflects and, before each use, compares it
      with the database's (one tiny SELECT); when they differ it catches up: it applies the
      records other processes appended to the index's log since it last read it
      (``VectorIndex.catch_up``, without the lock first), which brings it in step when the log
      ends in a mark of the database's generation;
    - each writer appends its change and then a mark of the generation it committed
      (``VectorIndex.mark``) to the log;
    - when catching up does not reach the database's generation (a writer killed between its
      commit and its mark, a log replaced by a rebuild or damaged) the process re-syncs fully:
      it reads snapshot and log if they hold exactly the database's ids, else rebuilds them
      from the database, as at start-up;
    - writers hold an exclusive ``flock`` on ``<directory>/<name>.lock`` from before their
      commit until their mark is appended, and full re-syncs hold it too, so the files are
      only ever written by a process whose copy matches the committed database.

    Thread-safe: threads of one process share the copy; catching up changes it in place, a
    full re-sync replaces it.
    """

    def __init__(self, directory: Path, name: str, model_id: str, dim: int, rows: sa.Select,
                 prepare: Callable[[Session], object] | None = None, *,
                 ann_threshold: int = ANN_THRESHOLD) -> None:
        """Describe the index.

        Args:
            rows: a select of ``(id, vector bytes)``, the index's content in the database.
            prepare: called under the lock before each re-sync with a session of its own, e.g.
                to embed rows that lack a vector; it must raise the generation in each
                transaction it commits.
            ann_threshold: vectors from which the index is approximate (``VectorIndex``).
        """
        self.name = name
        self.directory = Path(directory)
        self.lock_path = self.directory / f"{name}.lock"
        self.model_id = model_id
        self.dim = dim
        self.rows = rows
        self._prepare = prepare
        self.ann_threshold = ann_threshold
        # The copy and the generation it reflects (None: re-sync), replaced together.
        self._copy: tuple[VectorIndex, int | None] | None = None
        self._lock = threading.RLock()
        self._depth = 0  # how deeply the thread holding ``_lock`` holds the file lock
        self._committed: int | None = None

    def current(self, session: Session) -> VectorIndex:
        """Return the index as of the database's latest committed write, re-syncing if needed."""
        generation, copy = read_generation(session, self.name), self._copy
        if copy is not None and copy[1] == generation:
            return copy[0]
        with self._lock:  # the log holds the writes since: apply them, other processes left to write
            if self._depth == 0 and self._caught_up(generation):
                assert self._copy is not None
                return self._copy[0]
        with self._held():
            if self._depth == 1 and not self._in_step(session):
                self._sync(session)
            assert self._copy is not None
            return self._copy[0]  # inside ``writing`` (depth > 1): the copy being changed

    @contextlib.contextmanager
    def writing(self, session: Session) -> Iterator[VectorIndex]:
        """Hold the index for a write: in step with the database, other writers kept out.

        Inside, add the rows, ``commit(session)``, then change the index yielded (it appends
        to its log); on leaving, the committed generation is marked in the log. If anything
        fails after the commit, the mark is left out and the next use re-syncs from the database.
        """
        with self._held():
            if not self._caught_up(read_generation(session, self.name)):
                self._sync(session)
            assert self._copy is not None
            index, failed = self._copy[0], False
            self._committed = None
            with index.compacting_after():  # after the mark: others catch up without waiting for it
                try:
                    yield index
                except BaseException:
                    failed = True
                    raise
                finally:
                    committed, self._committed = self._committed, None
                    if committed is not None:  # after a failure the copy may lack the change
                        self._copy = (index, None)
                        if not failed:
                            index.mark(committed)
                            self._copy = (index, committed)

    def commit(self, session: Session) -> None:
        """Raise the generation in the session's transaction and commit it (inside ``writing``)."""
        assert self._depth, "commit() belongs inside writing()"
        generation = raise_generation(session, self.name)
        session.commit()
        self._committed = generation

    def _sync(self, session: Session) -> bool:
        """Make a fresh copy match the database (the caller holds the file lock)."""
        if self._prepare is not None:  # its own session: the caller's pending rows stay pending
            with Session(session.get_bind(), expire_on_commit=False) as own:
                self._prepare(own)
        generation = read_generation(session, self.name)  # writers are kept out: it stays
        if self._caught_up(generation):
            return False
        for stale in self.directory.glob(f"{self.name}-*.faiss*.tmp"):  # from a killed save
            stale.unlink(missing_ok=True)
        if self._copy is not None:
            self._copy[0].close()
        index = VectorIndex(self.directory, self.name, self.model_id, self.dim, ann_threshold=self.ann_threshold)
        with session.no_autoflush:
            rebuilt = sync_index(session, index, self.rows)
        if index.generation != generation:  # other processes catch up to it from the log
            index.mark(generation)
        self._copy = (index, generation)
        return rebuilt

    def _caught_up(self, generation: int) -> bool:
        """Apply the log's new records to the copy; return whether it then reflects ``generation``."""
        if self._copy is None:
            return False
        index = self._copy[0]
        if not index.catch_up() or index.generation is None or index.generation < generation:
            return False
        self._copy = (index, index.generation)  # a writer may have marked a later one meanwhile
        return True

    def _in_step(self, session: Session) -> bool:
        return self._copy is not None and self._copy[1] == read_generation(session, self.name)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        """Hold the thread lock and, outermost, the exclusive lock on the lock file."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with exclusive_lock(self.lock_path, 0o644):
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
