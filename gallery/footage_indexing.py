"""Indexing recorded footage into the gallery: find videos, skip done ones, analyse, store, link."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from footage.cluster import analyse_videos_on_ray
from footage.discovery import camera_name, content_hash, find_videos, recording_start
from footage.parallel import analyse_videos
from footage.settings import FootageSettings
from gallery import audit
from gallery.models import Video
from gallery.service import Gallery

log = logging.getLogger(__name__)


@dataclass
class IndexingSummary:
    """What one indexing run did."""

    videos_found: int = 0
    videos_skipped: int = 0
    videos_indexed: int = 0
    videos_failed: list[str] = field(default_factory=list)
    frames_read: int = 0
    frames_analysed: int = 0
    detections: int = 0
    tracks: int = 0
    matches: int = 0
    video_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Seconds of video indexed per second of wall time."""
        return self.video_seconds / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "real_time_factor": round(self.real_time_factor, 2)}

    def describe(self) -> str:
        """Return a human-readable summary, one figure per line."""
        failed = f" ({', '.join(self.videos_failed)})" if self.videos_failed else ""
        return "\n".join([
            f"videos       {self.videos_found} found, {self.videos_indexed} indexed, "
            f"{self.videos_skipped} already indexed, {len(self.videos_failed)} failed{failed}",
            f"frames       {self.frames_read} read, {self.frames_analysed} analysed",
            f"persons      {self.detections} detections in {self.tracks} tracks (sightings)",
            f"matches      {self.matches} links to enrolled persons",
            f"time         {self.seconds:.1f} s for {self.video_seconds:.1f} s of video "
            f"(real-time factor {self.real_time_factor:.1f}x)",
        ])


@dataclass(frozen=True)
class _Source:
    path: Path
    camera: str
    sha256: str


def index_footage(sessions: sessionmaker[Session], gallery: Gallery, paths: list[Path], *,
                  detector_spec: str, embedder_spec: str, settings: FootageSettings,
                  detector_options: dict[str, Any] | None = None,
                  embedder_options: dict[str, Any] | None = None,
                  camera: str | None = None, start: datetime | None = None,
                  workers: int | None = None, ray_address: str | None = None,
                  show_progress: bool = True, actor: str = audit.SYSTEM) -> IndexingSummary:
    """Index the videos under ``paths`` that this model has not indexed yet.

    Each video is stored in one transaction once it is fully analysed, so an interrupted run
    leaves no half-indexed video and the next run resumes with the videos not yet stored.
    A completed run is audited with ``actor`` and its counts.

    Args:
        ray_address: analyse on this Ray cluster (``footage.cluster``) instead of local worker
            processes; the analyses come back here and are stored the same way.
        workers: local processes, or Ray workers with ``ray_address`` (default: one per core).
        detector_options, embedder_options: the registries' keyword arguments (tiling, precision, ...).

    Raises:
        FileNotFoundError, ValueError: a path does not exist or is not a video.
        ClusterError: the Ray cluster cannot be reached or cannot build the models.
    """
    began = time.monotonic()
    summary = IndexingSummary()
    videos = find_videos(paths)
    summary.videos_found = len(videos)
    with sessions() as session:
        removed = gallery.sightings.remove_orphan_crops(session)
        if removed:
            log.info("removed %d crop files left by an interrupted run", removed)
        done = set(session.scalars(sa.select(Video.sha256)
                                   .where(Video.model_id == gallery.embedder.model_id)).all())
    sources = {}
    for path in videos:
        digest = content_hash(path)
        if digest in done:
            summary.videos_skipped += 1
            log.info("skipping %s: already indexed with model %s", path, gallery.embedder.model_id)
        else:
            sources[path] = _Source(path, camera_name(path, camera), digest)
            done.add(digest)
    if ray_address is None:
        outcomes = analyse_videos(list(sources), settings, detector=detector_spec, embedder=embedder_spec,
                                  detector_options=detector_options, embedder_options=embedder_options,
                                  workers=workers, show_progress=show_progress)
    else:
        outcomes = analyse_videos_on_ray(list(sources), settings, address=ray_address, detector=detector_spec,
                                         embedder=embedder_spec, detector_options=detector_options,
                                         embedder_options=embedder_options,
                                         workers=workers, show_progress=show_progress)
    for outcome in outcomes:
        if outcome.analysis is None:
            log.error("could not index %s: %s", outcome.path, outcome.error)
            summary.videos_failed.append(str(outcome.path))
            continue
        analysis, source = outcome.analysis, sources[outcome.path]
        with sessions() as session:
            video = gallery.sightings.record(
                session, analysis, camera=source.camera, sha256=source.sha256,
                recorded_start=recording_start(source.path, explicit=start,
                                               duration_s=analysis.duration_s).time)
            summary.matches += gallery.link_video(session, video.id)
        summary.videos_indexed += 1
        summary.frames_read += analysis.frames_read
        summary.frames_analysed += analysis.frames_analysed
        summary.detections += analysis.detections
        summary.tracks += len(analysis.tracks)
        summary.video_seconds += analysis.duration_s
        log.info("indexed %s (camera %s): %d sightings", source.path, source.camera, len(analysis.tracks))
    summary.seconds = time.monotonic() - began
    with sessions() as session:
        audit.record(session, actor, "index_footage", model_id=gallery.embedder.model_id,
                     videos_found=summary.videos_found, videos_indexed=summary.videos_indexed,
                     videos_skipped=summary.videos_skipped, videos_failed=len(summary.videos_failed),
                     sightings=summary.tracks, links=summary.matches)
        session.commit()
    return summary
