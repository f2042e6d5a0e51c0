"""The operator's footage as training data for ``reid adapt``: stored track crops labelled by mined identity,
and the operators' reviews of sightings as labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from embedder.datasets import LabelledImage
from footage.pseudo_identities import TrackSummary, mine_identities
from gallery.models import Sighting, SightingCrop, SightingReview, Video


@dataclass(frozen=True)
class ReviewLabels:
    """The crops of reviewed sightings: ``confirmed`` labelled ``person-<id>``; ``rejected`` pairs
    (``person-<id>``, a crop that is not them), negatives for that person."""

    confirmed: list[LabelledImage]
    rejected: list[LabelledImage]


def review_labels(session: Session, crops_root: Path, model_id: str) -> ReviewLabels:
    """Return the kept crops of the sightings operators confirmed or rejected for a person.

    Only footage indexed with ``model_id`` is used, as in ``footage_training_crops``.
    """
    rows = session.execute(
        sa.select(SightingReview.person_id, SightingReview.confirmed, SightingCrop.stored_path)
        .join(SightingCrop, SightingCrop.sighting_id == SightingReview.sighting_id)
        .join(Sighting, Sighting.id == SightingReview.sighting_id).join(Video)
        .where(Video.model_id == model_id)
        .order_by(SightingReview.person_id, SightingCrop.sighting_id, SightingCrop.rank)).all()
    labelled = [(confirmed, LabelledImage(path=Path(crops_root) / path, person=f"person-{person_id}", camera=None))
                for person_id, confirmed, path in rows]
    return ReviewLabels(confirmed=[image for confirmed, image in labelled if confirmed],
                        rejected=[image for confirmed, image in labelled if not confirmed])


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
