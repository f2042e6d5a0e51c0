"""Footage sightings: their vectors in a FAISS index, search, links to persons, retention."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from detector.base import Detection
from embedder.base import BGRImage
from gallery.errors import NotFound
from gallery.image_store import ImageStore
from gallery.index_sync import sync_index
from gallery.models import Sighting, SightingCrop, SightingMatch, SightingVector, Video
from gallery.vector_index import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SightingHit:
    """A sighting that matched a query: where, when, and how well."""

    sighting_id: int
    camera: str
    video: str
    start: datetime
    end: datetime
    frame: int
    bbox: list[int]
    score: float
    crop_id: int

    def to_dict(self) -> dict:
        return {"sighting_id": self.sighting_id, "camera": self.camera, "video": self.video,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "frame": self.frame,
                "bbox": self.bbox, "score": round(self.score, 6), "crop_id": self.crop_id}


@dataclass
class PurgeReceipt:
    """What a retention purge removed."""

    videos: int = 0
    sightings: int = 0
    vectors: int = 0
    files: int = 0

    def to_dict(self) -> dict:
        return {"videos": self.videos, "sightings": self.sightings, "vectors": self.vectors,
                "files": self.files}


class Sightings:
    """The footage side of the gallery, for one embedder model."""

    def __init__(self, data_dir: Path, model_id: str, dim: int) -> None:
        self.store = ImageStore(Path(data_dir) / "crops")
        self.model_id = model_id
        self.dim = dim
        self._index_dir = Path(data_dir) / "index"
        self._index: VectorIndex | None = None
        self._lock = threading.Lock()

    def index(self, session: Session) -> VectorIndex:
        """Return the sightings index, loading or rebuilding it from the database on first use."""
        with self._lock:
            if self._index is None:
                index = VectorIndex(self._index_dir, "sightings", self.model_id, self.dim)
                self.sync(session, index)
                self._index = index
            return self._index

    def sync(self, session: Session, index: VectorIndex) -> bool:
        """Make ``index`` hold exactly this model's sighting vectors; return whether it was rebuilt."""
        return sync_index(session, index, sa.select(SightingVector.id, SightingVector.vector)
                          .join(Sighting).join(Video).where(Video.model_id == self.model_id))

    def search(self, session: Session, vectors: NDArray[np.float32], threshold: float,
               limit: int = 20) -> list[list[SightingHit]]:
        """Return, per query vector (Q, D), the sightings scoring at least ``threshold``, best first.

        A sighting's score is its best member vector's cosine similarity to the query.
        """
        index = self.index(session)
        if len(index) == 0:
            return [[] for _ in vectors]
        scores, ids = index.search(vectors, min(len(index), max(8 * limit, 256)))
        found = {int(i) for i in ids.ravel() if i >= 0}
        owner = dict(session.execute(sa.select(SightingVector.id, SightingVector.sighting_id)
                                     .where(SightingVector.id.in_(found))).tuples().all())
        best_per_query = []
        for row_scores, row_ids in zip(scores.tolist(), ids.tolist()):
            best: dict[int, float] = {}
            for score, vector_id in zip(row_scores, row_ids):
                sighting_id = owner.get(vector_id)
                if sighting_id is not None and score >= threshold and score > best.get(sighting_id, -2.0):
                    best[sighting_id] = score
            best_per_query.append(sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])
        return [self._hits(session, best) for best in best_per_query]

    def _hits(self, session: Session, scored: list[tuple[int, float]]) -> list[SightingHit]:
        if not scored:
            return []
        rows = {s.id: (s, v, c) for s, v, c in session.execute(
            sa.select(Sighting, Video, SightingCrop).join(Video)
            .join(SightingCrop, sa.and_(SightingCrop.sighting_id == Sighting.id, SightingCrop.rank == 0))
            .where(Sighting.id.in_([sid for sid, _ in scored]))).tuples()}
        return [SightingHit(sighting_id=sid, camera=video.camera, video=video.path,
                            start=sighting.start_time, end=sighting.end_time, frame=crop.frame,
                            bbox=crop.bbox(), score=score, crop_id=crop.id)
                for sid, score in scored if sid in rows
                for sighting, video, crop in [rows[sid]]]

    def get_crop(self, session: Session, crop_id: int) -> SightingCrop:
        """Return a sighting crop row.

        Raises:
            NotFound: no crop has that id.
        """
        crop = session.get(SightingCrop, crop_id)
        if crop is None:
            raise NotFound(f"no sighting crop has id {crop_id}")
        return crop

    def frame(self, session: Session, sighting_id: int) -> tuple[BGRImage, Detection]:
        """Read the frame of a sighting's best crop from its video, with the crop's box.

        Raises:
            NotFound: unknown sighting, or its video file can no longer be read.
        """
        row = session.execute(sa.select(SightingCrop, Video.path).join(Sighting).join(Video)
                              .where(Sighting.id == sighting_id, SightingCrop.rank == 0)).first()
        if row is None:
            raise NotFound(f"no sighting has id {sighting_id}")
        crop, path = row
        capture = cv2.VideoCapture(path)
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, crop.frame)
            ok, image = capture.read()
        finally:
            capture.release()
        if not ok:
            raise NotFound(f"the video {path} of sighting {sighting_id} can no longer be read")
        return image, Detection(crop.x, crop.y, crop.w, crop.h, crop.detection_score)

    def link_person(self, session: Session, person_id: int, vectors: NDArray[np.float32],
                    threshold: float) -> int:
        """Link a person to the sightings their image ``vectors`` match; return new links made."""
        hits = self.search(session, vectors, threshold, limit=10_000)
        best: dict[int, float] = {}
        for per_image in hits:
            for hit in per_image:
                best[hit.sighting_id] = max(best.get(hit.sighting_id, -2.0), hit.score)
        return self._store_links(session, [(person_id, sid, score) for sid, score in best.items()])

    def _store_links(self, session: Session, links: list[tuple[int, int, float]]) -> int:
        """Insert or raise (person, sighting, score) links; commit; return how many are new."""
        new = 0
        for person_id, sighting_id, score in links:
            existing = session.get(SightingMatch, (person_id, sighting_id))
            if existing is None:
                session.add(SightingMatch(person_id=person_id, sighting_id=sighting_id, score=score))
                new += 1
            elif score > existing.score:
                existing.score = score
        session.commit()
        return new

    def for_person(self, session: Session, person_id: int, threshold: float
                   ) -> list[tuple[SightingMatch, Sighting, Video]]:
        """Return the person's linked sightings scoring at least ``threshold``, newest first."""
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            sa.select(SightingMatch, Sighting, Video).join(Sighting, SightingMatch.sighting_id == Sighting.id)
            .join(Video).where(SightingMatch.person_id == person_id, SightingMatch.score >= threshold)
            .order_by(Sighting.start_time.desc()))]

    def purge(self, session: Session, recorded_before: datetime) -> PurgeReceipt:
        """Delete videos recorded before ``recorded_before`` with their sightings, vectors and crops."""
        videos = session.scalars(sa.select(Video).where(Video.recorded_start < recorded_before)).all()
        video_ids = [v.id for v in videos]
        receipt = PurgeReceipt(videos=len(videos))
        if not videos:
            return receipt
        sighting_ids = session.scalars(sa.select(Sighting.id).where(Sighting.video_id.in_(video_ids))).all()
        vector_ids = session.scalars(sa.select(SightingVector.id)
                                     .where(SightingVector.sighting_id.in_(sighting_ids))).all()
        paths = session.scalars(sa.select(SightingCrop.stored_path)
                                .where(SightingCrop.sighting_id.in_(sighting_ids))).all()
        for video in videos:
            session.delete(video)
        session.commit()
        self.index(session).remove(np.array(vector_ids, dtype=np.int64))
        still_used = set(session.scalars(sa.select(SightingCrop.stored_path)
                                         .where(SightingCrop.stored_path.in_(paths))).all())
        receipt.sightings, receipt.vectors = len(sighting_ids), len(vector_ids)
        receipt.files = sum(self.store.remove(p) for p in set(paths) - still_used)
        return receipt
