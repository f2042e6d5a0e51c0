"""Searches kept as resources: the still, its persons' boxes and vectors, until the retention period ends."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from detector.base import Detection
from gallery import audit
from gallery.errors import NotFound
from gallery.file_lock import exclusive_lock
from gallery.image_store import ImageStore
from gallery.lookup import get_or_not_found
from gallery.models import SavedSearch, utcnow
from gallery.uploads import CheckedImage


@dataclass(frozen=True)
class StillQueries:
    """The persons found in a still: one box per query (None: the whole still), their vectors (Q, D)."""

    boxes: list[Detection | None]
    vectors: NDArray[np.float32]
    detected: int


SEARCH_RETENTION = timedelta(days=7)  # how long a stored search is kept by default


class SavedSearches:
    """Stored searches: a row each, the still as a file under ``data_dir/searches``.

    The processes sharing the data directory write and delete the stills under an exclusive
    lock on ``searches.lock``, so none removes a file another has written but not yet committed.
    """

    def __init__(self, data_dir: Path, retention: timedelta = SEARCH_RETENTION) -> None:
        self.store = ImageStore(Path(data_dir) / "searches")
        self.retention = retention
        self._lock_path = Path(data_dir) / "searches.lock"

    @property
    def retention_days(self) -> float:
        """Return the retention period in days."""
        return self.retention / timedelta(days=1)

    def save(self, session: Session, still: CheckedImage, queries: StillQueries, *, model_id: str,
             detector_id: str, actor: str) -> SavedSearch:
        """Store the still and its queries, audited as ``save_search``, and commit."""
        boxes = [None if d is None else [d.x, d.y, d.w, d.h, round(d.score, 4)] for d in queries.boxes]
        with exclusive_lock(self._lock_path), self.store.staged(session.rollback) as put:
            row = SavedSearch(sha256=still.sha256, stored_path=put(still.upload.data, still.sha256, still.extension),
                              width=still.width, height=still.height, detector_id=detector_id,
                              model_id=model_id, dim=int(queries.vectors.shape[1]),
                              detected=queries.detected, boxes=json.dumps(boxes),
                              vectors=np.asarray(queries.vectors, dtype="<f4").tobytes())
            session.add(row)
            session.flush()
            audit.record(session, actor, "save_search", target=f"search:{row.id}",
                         queries=len(boxes), detected=queries.detected)
            session.commit()
        return row

    def get(self, session: Session, search_id: int) -> SavedSearch:
        """Return a stored search that has not expired.

        Raises:
            NotFound: no search has that id, or it is older than the retention period.
        """
        row = get_or_not_found(session, SavedSearch, search_id, "search")
        if row.created_at < utcnow() - self.retention:
            raise NotFound(f"search {search_id} has expired: searches are kept {self.retention_days:g} day(s)")
        return row

    @staticmethod
    def queries(row: SavedSearch) -> StillQueries:
        """Return a stored search's boxes and vectors."""
        boxes = [None if b is None else Detection(*b) for b in json.loads(row.boxes)]
        vectors = np.frombuffer(row.vectors, dtype="<f4").reshape(-1, row.dim).astype(np.float32)
        return StillQueries(boxes, vectors, row.detected)

    def forget(self, session: Session, digests: Iterable[str]) -> list[str]:
        """Delete the searches whose still has one of ``digests`` (uncommitted); return their files."""
        digests = sorted(set(digests))
        if not digests:
            return []
        rows = session.scalars(sa.select(SavedSearch).where(SavedSearch.sha256.in_(digests))).all()
        for row in rows:
            session.delete(row)
        return [row.stored_path for row in rows]

    def remove_files(self, session: Session, paths: Iterable[str]) -> int:
        """After the commit: delete those of ``paths`` no search refers to any more; return how many."""
        paths = set(paths)
        with exclusive_lock(self._lock_path):
            still_used = set(session.scalars(sa.select(SavedSearch.stored_path)
                                             .where(SavedSearch.stored_path.in_(paths))))
            return sum(self.store.remove(path) for path in sorted(paths - still_used))

    def remove_orphan_files(self, session: Session) -> int:
        """Delete the stills no search refers to (left by a process killed before its commit); return how many."""
        with exclusive_lock(self._lock_path):
            return self.store.remove_unreferenced(set(session.scalars(sa.select(SavedSearch.stored_path))))

    def purge(self, session: Session, now: datetime | None = None, *, actor: str = audit.SYSTEM) -> int:
        """Delete the searches older than the retention period with their stills, audited; return how many."""
        cutoff = (now or utcnow()) - self.retention
        rows = session.scalars(sa.select(SavedSearch).where(SavedSearch.created_at < cutoff)).all()
        for row in rows:
            session.delete(row)
        audit.record(session, actor, "purge_searches", created_before=cutoff.isoformat(), searches=len(rows))
        session.commit()
        self.remove_files(session, [row.stored_path for row in rows])
        return len(rows)
