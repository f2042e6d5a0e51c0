"""Footage sightings: their vectors in a FAISS index, search, links to persons, retention."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session, selectinload

from base.images import BGRImage
from detector.base import Detection
from footage.analysis import VideoAnalysis
from footage.sampling import VideoError, cut_clip, read_frame
from gallery import audit
from gallery.errors import InvalidInput, NotFound
from gallery.image_store import ImageStore
from gallery.index_sync import SharedIndex
from gallery.lookup import get_or_not_found
from gallery.models import (
    MAX_ID,
    Person,
    Sighting,
    SightingCrop,
    SightingMatch,
    SightingReview,
    SightingVector,
    Video,
    pack_vector,
    unpack_vectors,
    utcnow,
)
from gallery.vector_index import ANN_THRESHOLD, VectorIndex

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
    confirmed: bool = False  # the matched person's operator confirmed it is them

    def to_dict(self) -> dict:
        return {"sighting_id": self.sighting_id, "camera": self.camera, "video": self.video,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "frame": self.frame,
                "bbox": self.bbox, "score": round(self.score, 6), "crop_id": self.crop_id,
                "confirmed": self.confirmed}


@dataclass(frozen=True)
class LinkedSighting:
    """A sighting shown for a person: linked above the threshold (``score``), or confirmed by an operator."""

    sighting: Sighting
    video: Video
    score: float | None
    confirmed: bool


SIGHTING_ORDERS = ("time", "score")


def apply_reviews(hits: list[SightingHit], verdicts: dict[int, bool]) -> list[SightingHit]:
    """Leave out the sightings a person's operator rejected; mark and put first those confirmed (id -> confirmed)."""
    kept = [replace(hit, confirmed=verdicts.get(hit.sighting_id, False)) for hit in hits
            if verdicts.get(hit.sighting_id, True)]
    return sorted(kept, key=lambda hit: not hit.confirmed)


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

    def __init__(self, data_dir: Path, model_id: str, dim: int, *, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.store = ImageStore(Path(data_dir) / "crops")
        self.model_id = model_id
        self.dim = dim
        self._vectors = SharedIndex(
            Path(data_dir) / "index", "sightings", model_id, dim,
            sa.select(SightingVector.id, SightingVector.vector).join(Sighting).join(Video)
            .where(Video.model_id == model_id), ann_threshold=ann_threshold)

    def index(self, session: Session) -> VectorIndex:
        """Return the sightings index as of the latest committed write of any process."""
        return self._vectors.current(session)

    def record(self, session: Session, analysis: VideoAnalysis, *, camera: str, sha256: str,
               recorded_start: datetime) -> Video:
        """Store a video's sightings, crops and vectors in one transaction, then index the vectors.

        Nothing of the video is visible until the commit; crop files written before a failed
        commit are removed (or, after a crash, by ``remove_orphan_crops``).
        """
        if analysis.embedder_id != self.model_id:
            raise ValueError(f"the analysis used model {analysis.embedder_id}, the gallery {self.model_id}")
        video = Video(path=analysis.path, camera=camera, sha256=sha256, model_id=analysis.embedder_id,
                      settings=analysis.settings_fingerprint, recorded_start=recorded_start,
                      fps=analysis.fps, frame_count=analysis.frame_count,
                      frames_analysed=analysis.frames_analysed, duration_s=analysis.duration_s,
                      processing_s=analysis.seconds)
        members: list[tuple[SightingVector, NDArray[np.float32]]] = []
        with self._vectors.writing(session) as index:  # in step with the database; writers queue
            with self.store.staged(session.rollback) as put:
                for track in analysis.tracks:
                    sighting = Sighting(start_time=recorded_start + timedelta(seconds=track.start_s),
                                        end_time=recorded_start + timedelta(seconds=track.end_s),
                                        start_frame=track.start_frame, end_frame=track.end_frame,
                                        detections=track.detections, mean_vector=pack_vector(track.embedding))
                    for rank, crop in enumerate(track.best_crops):
                        stored = put(crop.jpeg, hashlib.sha256(crop.jpeg).hexdigest(), ".jpg")
                        x, y, w, h = crop.bbox
                        sighting.crops.append(SightingCrop(
                            rank=rank, frame=crop.frame, x=x, y=y, w=w, h=h,
                            detection_score=crop.quality.score, sharpness=crop.quality.sharpness,
                            quality=crop.quality.quality, stored_path=stored))
                    for member in track.members:
                        row = SightingVector(frame=member.frame, quality=member.quality.quality,
                                             vector=pack_vector(member.embedding))
                        sighting.vectors.append(row)
                        members.append((row, member.embedding))
                    video.sightings.append(sighting)
                session.add(video)
                self._vectors.commit(session)
            if members:
                index.add(np.array([row.id for row, _ in members], dtype=np.int64),
                          np.stack([vector for _, vector in members]).astype(np.float32))
        return video

    def remove_orphan_crops(self, session: Session) -> int:
        """Delete crop files no row refers to (left by a run killed before its commit)."""
        with self._vectors.writing(session):  # no write is between its files and its commit
            return self.store.remove_unreferenced(set(session.scalars(sa.select(SightingCrop.stored_path))))

    def vectors_of(self, session: Session, video_id: int) -> tuple[list[int], NDArray[np.float32]]:
        """Return the sighting id of each member vector of a video, and the vectors (N, D)."""
        rows = session.execute(sa.select(SightingVector.sighting_id, SightingVector.vector)
                               .join(Sighting).where(Sighting.video_id == video_id)).all()
        return [r.sighting_id for r in rows], unpack_vectors([r.vector for r in rows], self.dim)

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
                                     .where(SightingVector.id.in_(found))).all())
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
            sa.select(Sighting, Video, SightingCrop).select_from(Sighting).join(Video)
            .join(SightingCrop, sa.and_(SightingCrop.sighting_id == Sighting.id, SightingCrop.rank == 0))
            .where(Sighting.id.in_([sid for sid, _ in scored])))}
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
        return get_or_not_found(session, SightingCrop, crop_id, "sighting crop")

    def frame(self, session: Session, sighting_id: int) -> tuple[BGRImage, Detection]:
        """Read the frame of a sighting's best crop from its video, with the crop's box.

        Raises:
            NotFound: unknown sighting, or its video file can no longer be read.
        """
        crop, video = self._best_crop(session, sighting_id)
        try:
            image = read_frame(Path(video.path), crop.frame)
        except VideoError as exc:
            raise NotFound(f"the video {video.path} of sighting {sighting_id} can no longer be read") from exc
        return image, Detection(crop.x, crop.y, crop.w, crop.h, crop.detection_score)

    def clip(self, session: Session, sighting_id: int, around_s: float = 3.0) -> bytes:
        """Cut ``around_s`` seconds either side of a sighting's best crop from its video, as WebM.

        Raises:
            NotFound: unknown sighting, or its video file can no longer be read.
        """
        crop, video = self._best_crop(session, sighting_id)
        reach = round(around_s * video.fps)
        try:
            return cut_clip(Path(video.path), max(0, crop.frame - reach),
                            min(video.frame_count - 1, crop.frame + reach), video.fps)
        except VideoError as exc:
            raise NotFound(f"the video {video.path} of sighting {sighting_id} can no longer be read") from exc

    def _best_crop(self, session: Session, sighting_id: int) -> tuple[SightingCrop, Video]:
        """Return a sighting's best crop (rank 0) and its video.

        Raises:
            NotFound: no sighting has that id.
        """
        row = None if not 0 < sighting_id <= MAX_ID else session.execute(
            sa.select(SightingCrop, Video).select_from(SightingCrop).join(Sighting).join(Video)
            .where(Sighting.id == sighting_id, SightingCrop.rank == 0)).first()
        if row is None:
            raise NotFound(f"no sighting has id {sighting_id}")
        return row[0], row[1]

    @contextlib.contextmanager
    def linking(self, session: Session) -> Iterator[None]:
        """Keep footage writers (``record``, ``purge``) out while the caller links and commits.

        Inside, the index holds every sighting committed so far and no process sharing this
        data directory stores or purges one. Where both are held, take the gallery's lock first.
        """
        with self._vectors.writing(session):
            yield

    def find_links(self, session: Session, vectors: NDArray[np.float32], threshold: float) -> dict[int, float]:
        """Return the sightings that image ``vectors`` (N, D) match, each with its best score.

        A read only: objects pending in ``session`` are not flushed by it.
        """
        best: dict[int, float] = {}
        with session.no_autoflush:
            hits = self.search(session, vectors, threshold, limit=10_000)
        for per_image in hits:
            for hit in per_image:
                best[hit.sighting_id] = max(best.get(hit.sighting_id, -2.0), hit.score)
        return best

    def store_links(self, session: Session, links: list[tuple[int, int, float]]) -> int:
        """Add or raise (person, sighting, score) links, uncommitted; return how many are new.

        Links to sightings deleted since they were found are left out. ``linking`` keeps this
        data directory's purges out; the database itself guards against any other delete: on
        PostgreSQL the sightings kept are locked ``FOR KEY SHARE`` until the commit (a delete
        committed first hides the row from the locking read; a later one waits for the commit),
        while SQLite, which ignores the clause, allows no other writer once the caller's
        transaction has written.
        """
        if not links:
            return 0
        alive = set(session.scalars(sa.select(Sighting.id).where(Sighting.id.in_({s for _, s, _ in links}))
                                    .with_for_update(read=True, key_share=True)))
        new = 0
        for person_id, sighting_id, score in links:
            if sighting_id not in alive:
                continue
            existing = session.get(SightingMatch, (person_id, sighting_id))
            if existing is None:
                session.add(SightingMatch(person_id=person_id, sighting_id=sighting_id, score=score))
                new += 1
            elif score > existing.score:
                existing.score = score
        return new

    def for_person(self, session: Session, person_id: int, threshold: float, order: str = "time"
                   ) -> list[LinkedSighting]:
        """Return the person's sightings: linked scoring at least ``threshold``, or confirmed; never rejected.

        Confirmed ones come first, then by ``order``: ``time`` newest first, ``score`` best first.

        Raises:
            InvalidInput: ``order`` is not one of ``SIGHTING_ORDERS``.
        """
        if order not in SIGHTING_ORDERS:
            raise InvalidInput(f"order must be one of {', '.join(SIGHTING_ORDERS)}, got {order[:40]!r}")
        match = sa.and_(SightingMatch.sighting_id == Sighting.id, SightingMatch.person_id == person_id)
        review = sa.and_(SightingReview.sighting_id == Sighting.id, SightingReview.person_id == person_id)
        confirmed = SightingReview.confirmed.is_(True)
        then = Sighting.start_time.desc() if order == "time" else SightingMatch.score.desc().nulls_last()
        rows = session.execute(
            sa.select(Sighting, Video, SightingMatch.score, SightingReview.confirmed).join(Video)
            .outerjoin(SightingMatch, match).outerjoin(SightingReview, review)
            .where(sa.or_(SightingMatch.score >= threshold, confirmed))
            .where(sa.or_(SightingReview.confirmed.is_(None), confirmed))
            .order_by(sa.case((confirmed, 0), else_=1), then, Sighting.id)).all()
        return [LinkedSighting(sighting, video, score, bool(verdict)) for sighting, video, score, verdict in rows]

    def get(self, session: Session, sighting_id: int) -> Sighting:
        """Return a sighting with its video and crops.

        Raises:
            NotFound: no sighting has that id.
        """
        return get_or_not_found(session, Sighting, sighting_id, "sighting",
                                (selectinload(Sighting.video), selectinload(Sighting.crops)))

    def reviews(self, session: Session, person_id: int) -> dict[int, bool]:
        """Return the person's reviewed sightings: sighting id -> confirmed (False: rejected)."""
        rows = session.execute(sa.select(SightingReview.sighting_id, SightingReview.confirmed)
                               .where(SightingReview.person_id == person_id)).all()
        return {sighting_id: confirmed for sighting_id, confirmed in rows}

    def review(self, session: Session, person_id: int, sighting_id: int, confirmed: bool, *,
               actor: str = audit.SYSTEM) -> None:
        """Store an operator's verdict that a sighting is (``confirmed``) or is not the person, audited; commit.

        Raises:
            NotFound: no such person or sighting.
        """
        get_or_not_found(session, Person, person_id, "person")
        self.get(session, sighting_id)
        existing = session.get(SightingReview, (person_id, sighting_id))
        if existing is None:
            session.add(SightingReview(person_id=person_id, sighting_id=sighting_id, confirmed=confirmed))
        else:
            existing.confirmed, existing.reviewed_at = confirmed, utcnow()
        audit.record(session, actor, "review_sighting", target=f"person:{person_id}",
                     sighting_id=sighting_id, confirmed=confirmed)
        session.commit()

    def purge(self, session: Session, recorded_before: datetime, *, actor: str = audit.SYSTEM) -> PurgeReceipt:
        """Delete videos recorded before ``recorded_before`` with their sightings, vectors and crops.

        The run is audited (``actor``, the cutoff and the counts), in the transaction of the delete.
        """
        with self._vectors.writing(session) as index:  # writers queue; the file is saved after commit
            videos = session.scalars(sa.select(Video).where(Video.recorded_start < recorded_before)).all()
            video_ids = [v.id for v in videos]
            receipt = PurgeReceipt(videos=len(videos))
            if not videos:
                audit.record(session, actor, "purge_footage", recorded_before=recorded_before.isoformat(),
                             videos=0, sightings=0, vectors=0)
                session.commit()
                return receipt
            sighting_ids = session.scalars(sa.select(Sighting.id).where(Sighting.video_id.in_(video_ids))).all()
            vector_ids = session.scalars(sa.select(SightingVector.id)
                                         .where(SightingVector.sighting_id.in_(sighting_ids))).all()
            paths = session.scalars(sa.select(SightingCrop.stored_path)
                                    .where(SightingCrop.sighting_id.in_(sighting_ids))).all()
            for video in videos:
                session.delete(video)
            audit.record(session, actor, "purge_footage", recorded_before=recorded_before.isoformat(),
                         videos=len(videos), sightings=len(sighting_ids), vectors=len(vector_ids))
            self._vectors.commit(session)
            index.remove(np.array(vector_ids, dtype=np.int64))
            still_used = set(session.scalars(sa.select(SightingCrop.stored_path)
                                             .where(SightingCrop.stored_path.in_(paths))).all())
            receipt.sightings, receipt.vectors = len(sighting_ids), len(vector_ids)
            receipt.files = sum(self.store.remove(p) for p in set(paths) - still_used)
        return receipt
