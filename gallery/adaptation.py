"""The operator's footage as training data for ``reid adapt``: stored track crops labelled by mined identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from embedder.datasets import LabelledImage
from footage.pseudo_identities import TrackSummary, mine_identities
from gallery.models import Sighting, Video


def footage_training_crops(session: Session, crops_root: Path, model_id: str,
                           link_threshold: float) -> list[LabelledImage]:
    """Return the kept crops of the footage indexed with ``model_id``, each labelled ``track-<k>`` by
    its pseudo-identity (``mine_identities`` over the sightings' mean vectors, times and cameras).

    Only footage indexed with the same model is used: its vectors are the ones the mining compares.
    """
    rows = session.execute(
        sa.select(Sighting, Video.camera).join(Video).where(Video.model_id == model_id)
        .options(selectinload(Sighting.crops)).order_by(Sighting.id)).all()
    tracks = [TrackSummary(camera=camera, start=sighting.start_time.timestamp(),
                           end=sighting.end_time.timestamp(), vector=_unit(sighting.mean_vector))
              for sighting, camera in rows]
    labels = mine_identities(tracks, link_threshold)
    return [LabelledImage(path=Path(crops_root) / crop.stored_path, person=f"track-{label}", camera=None)
            for (sighting, _), label in zip(rows, labels, strict=True) for crop in sighting.crops]


def _unit(blob: bytes) -> np.ndarray:
    """Decode a stored float32 vector and scale it to unit length."""
    vector = np.frombuffer(blob, dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
