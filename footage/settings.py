"""The knobs of footage analysis, frozen and fingerprinted so results can be keyed by them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# Bump when the analysis code changes its output for the same settings and models.
ANALYSIS_VERSION = 1
TILE_EVERY = 2  # analysed frames per tiled one; the frames between are detected whole and tracked


@dataclass(frozen=True, slots=True)
class FootageSettings:
    """How a video is sampled, filtered, tracked and summarised.

    The defaults were tuned on PETS09-S2L1 and TUD-Campus (``benchmarks/footage_benchmark.py``)
    for at least 10x real time on a 480x360 recording with two CPU cores.

    Sampling and motion:
        analysis_fps: frames analysed per second of video (all frames if the video has fewer).
        motion_width: width in pixels of the grey frame the background model sees.
        motion_threshold: share of moving pixels below which a sampled frame is static.
        motion_hold_s: static frames are still analysed while a track was seen this recently.

    Detection and quality gates:
        tile_every: every this many analysed frames, the detector tiles the frame (when its
            tiling says so for the frame size); the others it sees whole, and tracking carries
            the persons only tiles find between the tiled frames. 1: tile every frame.
        min_score: detector score a box needs, in [0, 1].
        min_height: crops shorter than this many pixels are dropped.
        min_sharpness: crops whose normalized variance of Laplacian is below this are dropped.
        edge_margin: crops within this many pixels of the frame border are dropped as cut.
        reference_height: crops this tall or taller get full marks for size in the quality score.
        reference_sharpness: crops this sharp or sharper get full marks for sharpness.

    Tracking (see ``footage.tracking.Tracker``):
        track_min_score: boxes scoring from this up to ``min_score`` only extend tracks.
        track_min_overlap: least buffered IoU between a track's predicted box and a detection.
        track_min_similarity: least cosine similarity of their colour descriptors
            (``footage.appearance``).
        track_overlap_weight: weight of overlap against appearance in the matching score.
        track_buffer: box growth per second since the track was last seen, as a share of its size.
        track_max_age_s: a track unseen this long ends.
        min_track_detections: shorter tracks are dropped.

    Summaries:
        max_members: most member crops embedded per track, spread over its duration.
        crops_per_member: a track gets one member per this many kept crops (rounded up).
        best_crops: crops kept as JPEG per track, the best members by quality.
        jpeg_quality: JPEG quality of the kept crops.
        embed_batch: crops per embedder call.
    """

    analysis_fps: float = 2.0
    motion_width: int = 320
    motion_threshold: float = 0.0005
    motion_hold_s: float = 2.0
    tile_every: int = TILE_EVERY
    min_score: float = 0.3
    min_height: int = 50
    min_sharpness: float = 80.0
    edge_margin: int = 2
    reference_height: int = 128
    reference_sharpness: float = 400.0
    track_min_score: float = 0.2
    track_min_overlap: float = 0.1
    track_min_similarity: float = 0.9
    track_overlap_weight: float = 0.5
    track_buffer: float = 0.3
    track_max_age_s: float = 2.0
    min_track_detections: int = 3
    max_members: int = 4
    crops_per_member: int = 3
    best_crops: int = 3
    jpeg_quality: int = 90
    embed_batch: int = 32

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ValueError: a setting is outside its range; the message names it.
        """
        positive = ("analysis_fps", "motion_width", "min_height", "reference_height",
                    "reference_sharpness", "track_max_age_s", "min_track_detections",
                    "max_members", "crops_per_member", "best_crops", "embed_batch", "tile_every")
        unit = ("motion_threshold", "min_score", "track_min_score", "track_min_overlap",
                "track_overlap_weight")
        non_negative = ("motion_hold_s", "min_sharpness", "edge_margin", "track_buffer")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in unit:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not -1.0 <= self.track_min_similarity <= 1.0:
            raise ValueError(f"track_min_similarity must be in [-1, 1], "
                             f"got {self.track_min_similarity}")
        if self.track_min_score > self.min_score:
            raise ValueError(f"track_min_score ({self.track_min_score}) must not exceed "
                             f"min_score ({self.min_score})")
        if self.best_crops > self.max_members:
            raise ValueError(f"best_crops ({self.best_crops}) must not exceed "
                             f"max_members ({self.max_members})")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")

    def fingerprint(self) -> str:
        """Return a stable 16-hex-digit hash of the settings and the analysis version."""
        payload = json.dumps({"version": ANALYSIS_VERSION, **dataclasses.asdict(self)},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
