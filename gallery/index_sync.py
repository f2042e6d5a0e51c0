"""Making a FAISS index match the database, which is the source of truth."""

from __future__ import annotations

import logging

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gallery.vector_index import IdFingerprint, VectorIndex

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
    id_array = np.array([row[0] for row in found], dtype=np.int64)
    vectors = (np.stack([np.frombuffer(row[1], "<f4") for row in found]).astype(np.float32)
               if found else np.zeros((0, index.dim), np.float32))
    index.rebuild(id_array, vectors)
    return True
