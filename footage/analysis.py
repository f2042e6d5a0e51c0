"""The per-video work: sample, skip static frames, detect, gate, track, embed, summarise.

``analyse_video`` is a pure function of (video, settings, models): it reads nothing else and
writes nothing, so its result can be keyed by (content hash, settings fingerprint, model ids).

Only a few crops per track are embedded. Tracking compares colour descriptors, which cost
microseconds where the embedder costs ~12 ms a crop on a CPU, and told apart persons in
consecutive analysed frames of PETS09-S2L1 at least as well (ROC AUC 0.94 against 0.90 for
the re-ID embedding). Each track keeps a bounded pool of candidate crops spread over its
duration, each the best of a run of consecutive detections. When the track ends, it gets
one member per ``crops_per_member`` kept crops, at most ``max_members``: the best candidate
of each of that many equal stretches of the pool. Members are embedded in batches across
tracks.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage, encode_jpeg
from detector.base import Detection, Detector
from embedder.base import Embedder, l2_normalize
from footage.appearance import colour_descriptors
from footage.motion import MotionMeter, needs_analysis
from footage.quality import CropQuality, gate, measure
from footage.sampling import probe_video, read_frames
from footage.settings import FootageSettings
from footage.stages import StageClock
from footage.tracking import Track, Tracker

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
PROGRESS_EVERY = 25  # frames between progress reports
POOL_PER_MEMBER = 4  # candidate crops a track keeps per member it will embed


@dataclass(frozen=True, slots=True)
class Member:
    """An embedded crop of a track.

    Attributes:
        frame: frame index in the video, from 0.
        offset_s: seconds from the start of the video.
        bbox: (x, y, w, h) in pixels of the frame.
        quality: the crop's quality measures.
        embedding: (D,) unit float32 vector.
    """

    frame: int
    offset_s: float
    bbox: Box
    quality: CropQuality
    embedding: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class BestCrop:
    """One of a track's best crops, as JPEG bytes; fields as in ``Member``."""

    frame: int
    offset_s: float
    bbox: Box
    quality: CropQuality
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class Observation:
    """A kept detection: where, when, how good, and its track (index in ``tracks``, or -1)."""

    frame: int
    bbox: Box
    quality: CropQuality
    track: int


@dataclass(frozen=True, slots=True)
class FootageTrack:
    """One person followed through the video: one sighting.

    Attributes:
        start_frame: first frame with a detection.
        end_frame: last frame with a detection.
        start_s: ``start_frame / fps``.
        end_s: ``end_frame / fps``.
        detections: detections in the track, kept crops or not.
        members: embedded crops spread over the track, in frame order (one per
            ``crops_per_member`` kept crops, at most ``max_members``).
        best_crops: up to ``best_crops`` of the members, best quality first, as JPEG.
        embedding: (D,) quality-weighted mean of the member embeddings, L2-normalized.
    """

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    detections: int
    members: tuple[Member, ...]
    best_crops: tuple[BestCrop, ...]
    embedding: NDArray[np.float32]

    @property
    def member_embeddings(self) -> NDArray[np.float32]:
        """Return the (M, D) member embeddings, in member order."""
        return np.stack([m.embedding for m in self.members])


@dataclass(frozen=True, slots=True)
class VideoAnalysis:
    """All that one video yields, plus figures about the work.

    Attributes:
        path: the video analysed.
        settings_fingerprint: ``FootageSettings.fingerprint()`` of the settings used.
        detector_id, embedder_id: the models' ``model_id``.
        fps: frames per second stated by the container.
        frame_count: frames stated by the container (0 when unknown).
        width, height: frame size in pixels.
        frames_read: frames actually decoded.
        duration_s: ``frames_read / fps``.
        frames_sampled: frames picked by the analysis frame rate.
        frames_analysed: sampled frames run through the detector.
        frames_static: sampled frames skipped for lack of motion.
        detections: boxes the detector returned at ``min_score``.
        crops_kept: boxes that passed the quality gate.
        crops_dropped: reason (``DropReason`` value) to count of boxes that did not.
        tracks_dropped_short: tracks dropped for having too few detections.
        tracks_dropped_no_crop: tracks dropped for having no crop that passed the gate.
        tracks: the kept tracks, by start frame.
        observations: every kept detection, by frame.
        seconds: wall time of the analysis, models loaded beforehand.
        cpu_seconds: CPU time of the process (all its threads) over the analysis.
        stage_seconds, stage_cpu_seconds: wall and CPU seconds per stage (``footage.stages.STAGES``).
    """

    path: str
    settings_fingerprint: str
    detector_id: str
    embedder_id: str
    fps: float
    frame_count: int
    width: int
    height: int
    frames_read: int
    duration_s: float
    frames_sampled: int
    frames_analysed: int
    frames_static: int
    detections: int
    crops_kept: int
    crops_dropped: dict[str, int]
    tracks_dropped_short: int
    tracks_dropped_no_crop: int
    tracks: tuple[FootageTrack, ...]
    observations: tuple[Observation, ...]
    seconds: float
    cpu_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        """Return seconds of video analysed per second of work."""
        return self.duration_s / self.seconds if self.seconds > 0 else float("inf")

    @property
    def cpu_realtime_factor(self) -> float:
        """Return seconds of video analysed per CPU second: the real-time factor of one free core."""
        return self.duration_s / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")


@dataclass(slots=True)
class _Candidate:
    """A kept crop a track may embed."""

    frame: int
    bbox: Box
    quality: CropQuality
    crop: BGRImage


@dataclass(slots=True)
class _CandidatePool:
    """At most ``capacity`` candidates spread evenly over a track, each the best of its run.

    Each entry is the best of ``stride`` consecutive candidates; when the pool fills, pairs
    of neighbours merge into their better one and the stride doubles.
    """

    capacity: int
    entries: list[_Candidate] = field(default_factory=list)
    stride: int = 1
    offered: int = 0
    _run_best: _Candidate | None = None
    _run_length: int = 0

    def add(self, candidate: _Candidate) -> None:
        """Offer the track's next candidate."""
        self.offered += 1
        if self._run_best is None or candidate.quality.quality > self._run_best.quality.quality:
            self._run_best = candidate
        self._run_length += 1
        if self._run_length < self.stride:
            return
        self.entries.append(self._run_best)
        self._run_best, self._run_length = None, 0
        if len(self.entries) >= self.capacity:
            self.entries = [_better(*self.entries[i:i + 2]) for i in range(0, len(self.entries), 2)]
            self.stride *= 2

    def members(self, count: int) -> list[_Candidate]:
        """Return the best candidate of each of ``count`` equal stretches, in frame order."""
        entries = self.entries + ([self._run_best] if self._run_best is not None else [])
        stretches = np.array_split(np.arange(len(entries)), min(count, len(entries)))
        return [max((entries[i] for i in s.tolist()), key=lambda c: c.quality.quality)
                for s in stretches]


def _better(*candidates: _Candidate) -> _Candidate:
    """Return the candidate of highest quality, the earliest on ties."""
    return max(candidates, key=lambda c: c.quality.quality)


@dataclass(slots=True)
class _Finished:
    """A kept track waiting for its members' embeddings."""

    track: Track
    members: list[_Candidate]
    best_crops: list[BestCrop]


def analyse_video(path: Path, settings: FootageSettings, detector: Detector, embedder: Embedder,
                  progress: Callable[[int], None] | None = None) -> VideoAnalysis:
    """Find the persons in a video and summarise each as a track with embeddings.

    Args:
        path: a video file OpenCV can read.
        settings: the analysis settings.
        detector: the person detector; loaded here if it is not yet.
        embedder: the crop embedder; loaded here if it is not yet.
        progress: called with the number of frames read since its last call.

    Returns:
        The tracks, the kept detections and figures about the work.

    Raises:
        VideoError: OpenCV cannot open the file or it has no usable frame rate.
    """
    info = probe_video(path)
    detector.load()
    embedder.load()
    started, cpu_started = time.perf_counter(), time.process_time()
    clock = StageClock()
    work = _VideoWork(settings, info.fps, embedder, clock)
    meter = MotionMeter(settings.motion_width)
    frames_read = reported = 0
    for index, frame in clock.timed(read_frames(path, info.fps, settings.analysis_fps), "decode"):
        frames_read = index + 1
        if progress is not None and frames_read - reported >= PROGRESS_EVERY:
            progress(frames_read - reported)
            reported = frames_read
        if frame is None:
            continue
        work.frames_sampled += 1
        with clock.stage("motion"):
            moving = meter.moving_fraction(frame)
        if needs_analysis(moving, settings.motion_threshold,
                          work.tracker.seconds_since_seen(index), settings.motion_hold_s):
            tiles = work.frames_analysed % settings.tile_every == 0
            work.frames_analysed += 1
            with clock.stage("detect"):
                found = detector.detect(frame, settings.track_min_score, tiles=tiles)
            with clock.stage("track"):
                work.add_frame(index, frame, found)
        else:
            work.frames_static += 1
        with clock.stage("track"):
            work.finish(*work.tracker.pop_finished(index))
    with clock.stage("track"):
        work.finish(*work.tracker.pop_finished())
        tracks, observations = work.summarise()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if progress is not None and frames_read > reported:
        progress(frames_read - reported)
    analysis = VideoAnalysis(
        path=str(path), settings_fingerprint=settings.fingerprint(),
        detector_id=detector.model_id, embedder_id=embedder.model_id, fps=info.fps,
        frame_count=info.frame_count, width=info.width, height=info.height,
        frames_read=frames_read, duration_s=frames_read / info.fps,
        frames_sampled=work.frames_sampled, frames_analysed=work.frames_analysed,
        frames_static=work.frames_static, detections=work.detections,
        crops_kept=len(observations), crops_dropped=dict(sorted(work.dropped.items())),
        tracks_dropped_short=work.tracks_dropped_short,
        tracks_dropped_no_crop=work.tracks_dropped_no_crop, tracks=tracks,
        observations=observations, seconds=seconds, cpu_seconds=cpu_seconds,
        stage_seconds=clock.wall, stage_cpu_seconds=clock.cpu)
    log.info("%s: %d frames, %d analysed, %d static, %d tracks in %.1f s (%.1fx real time)",
             path.name, frames_read, analysis.frames_analysed, analysis.frames_static,
             len(tracks), analysis.seconds, analysis.realtime_factor)
    return analysis


class _VideoWork:
    """The running state of one video's analysis."""

    def __init__(self, settings: FootageSettings, fps: float, embedder: Embedder,
                 clock: StageClock) -> None:
        self.settings = settings
        self.fps = fps
        self.embedder = embedder
        self.clock = clock
        self.tracker = Tracker(
            fps, min_overlap=settings.track_min_overlap,
            min_similarity=settings.track_min_similarity,
            overlap_weight=settings.track_overlap_weight, buffer=settings.track_buffer,
            max_age_s=settings.track_max_age_s, min_detections=settings.min_track_detections)
        self.frames_sampled = self.frames_analysed = self.frames_static = 0
        self.detections = 0
        self.dropped: Counter[str] = Counter()
        self.tracks_dropped_short = self.tracks_dropped_no_crop = 0
        self.pools: dict[int, _CandidatePool] = {}
        self.kept: list[tuple[int, Box, CropQuality, int]] = []  # frame, box, quality, track id
        self.waiting: list[_Finished] = []
        self.summaries: dict[int, FootageTrack] = {}  # by tracker id

    def add_frame(self, index: int, frame: BGRImage, found: list[Detection]) -> None:
        """Track one analysed frame's detections and keep the crops that pass the gate.

        Every detection feeds the tracker, so a person who is briefly too small, blurred
        or at the edge stays one track; only kept crops become observations and members.
        """
        weak = np.array([d.score < self.settings.min_score for d in found], dtype=bool)
        self.detections += int(np.count_nonzero(~weak))
        boxes = np.array([d.as_list() for d in found], dtype=np.int64).reshape(-1, 4)
        ids = self.tracker.update(index, boxes, colour_descriptors(frame, boxes), weak)
        capacity = POOL_PER_MEMBER * self.settings.max_members
        for d, track_id, is_weak in zip(found, ids.tolist(), weak.tolist()):
            if is_weak:
                continue
            quality = measure(frame, d, edge_margin=self.settings.edge_margin,
                              reference_height=self.settings.reference_height,
                              reference_sharpness=self.settings.reference_sharpness)
            reason = gate(quality, min_height=self.settings.min_height,
                          min_sharpness=self.settings.min_sharpness)
            if reason is not None:
                self.dropped[reason.value] += 1
                continue
            box = (d.x, d.y, d.w, d.h)
            self.kept.append((index, box, quality, track_id))
            crop = frame[d.y:d.y + d.h, d.x:d.x + d.w].copy()
            self.pools.setdefault(track_id, _CandidatePool(capacity)).add(
                _Candidate(index, box, quality, crop))

    def finish(self, kept: list[Track], dropped: list[Track]) -> None:
        """Pick the members of ended tracks; embed them once ``embed_batch`` crops wait.

        Tracks too short, or without a single kept crop, are dropped.
        """
        self.tracks_dropped_short += len(dropped)
        for track in dropped:
            self.pools.pop(track.track_id, None)
        for track in kept:
            if track.track_id not in self.pools:
                self.tracks_dropped_no_crop += 1
                continue
            pool = self.pools.pop(track.track_id)
            members = pool.members(min(self.settings.max_members,
                                       math.ceil(pool.offered / self.settings.crops_per_member)))
            ranked = sorted(members, key=lambda c: (-c.quality.quality, c.frame))
            best = [BestCrop(c.frame, c.frame / self.fps, c.bbox, c.quality,
                             encode_jpeg(c.crop, self.settings.jpeg_quality))
                    for c in ranked[:self.settings.best_crops]]
            self.waiting.append(_Finished(track, members, best))
        if sum(len(f.members) for f in self.waiting) >= self.settings.embed_batch:
            self._embed_waiting()

    def _embed_waiting(self) -> None:
        """Embed the members of all waiting tracks in one call and summarise those tracks."""
        with self.clock.stage("embed"):
            vectors = self.embedder.embed([c.crop for f in self.waiting for c in f.members])
        start = 0
        for finished in self.waiting:
            embeddings = vectors[start:start + len(finished.members)]
            start += len(finished.members)
            self.summaries[finished.track.track_id] = self._summary(finished, embeddings)
        self.waiting = []

    def _summary(self, finished: _Finished, embeddings: NDArray[np.float32]) -> FootageTrack:
        """Summarise a finished track given its (M, D) member embeddings."""
        members = tuple(Member(c.frame, c.frame / self.fps, c.bbox, c.quality, vector)
                        for c, vector in zip(finished.members, embeddings))
        weights = np.array([m.quality.quality for m in members], dtype=np.float32)
        mean = l2_normalize((weights[:, None] * embeddings).sum(axis=0, keepdims=True))[0]
        frames = finished.track.frames
        return FootageTrack(start_frame=frames[0], end_frame=frames[-1],
                            start_s=frames[0] / self.fps, end_s=frames[-1] / self.fps,
                            detections=len(frames), members=members,
                            best_crops=tuple(finished.best_crops), embedding=mean)

    def summarise(self) -> tuple[tuple[FootageTrack, ...], tuple[Observation, ...]]:
        """Return the tracks, by start frame, and the observations pointing into them."""
        if self.waiting:
            self._embed_waiting()
        order = sorted(self.summaries, key=lambda i: (self.summaries[i].start_frame, i))
        position = {track_id: i for i, track_id in enumerate(order)}
        observations = tuple(Observation(frame, box, quality, position.get(track_id, -1))
                             for frame, box, quality, track_id in self.kept)
        return tuple(self.summaries[i] for i in order), observations
