"""analyse_video end to end on a synthetic video: tracks, time ranges, crops, determinism."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from base.images import BGRImage
from detector.base import Detection
from embedder.base import Embedder
from footage.analysis import VideoAnalysis, analyse_video
from footage.sampling import VideoError
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import SETTINGS, without_timing
from tests.footage.synthetic import ColourDetector


@pytest.fixture
def analysis(two_walkers: Path, colour_detector: ColourDetector,
             thumbnail_embedder: Embedder) -> VideoAnalysis:
    return analyse_video(two_walkers, SETTINGS, colour_detector, thumbnail_embedder)


def test_each_walker_is_one_track_with_the_right_time_range(analysis: VideoAnalysis) -> None:
    # Walker 1 is in view in frames 0-39, walker 2 in frames 20-59; even frames are analysed.
    assert [(t.start_frame, t.end_frame, t.detections) for t in analysis.tracks] == [
        (0, 38, 20), (20, 58, 20)]
    assert [(t.start_s, t.end_s) for t in analysis.tracks] == [(0.0, 3.8), (2.0, 5.8)]
    assert (analysis.frames_read, analysis.duration_s, analysis.frames_sampled) == (70, 7.0, 35)
    assert analysis.frames_analysed + analysis.frames_static == 35
    assert (analysis.tracks_dropped_short, analysis.tracks_dropped_no_crop) == (0, 0)
    assert (analysis.detector_id, analysis.embedder_id) == ("test-colour-blobs-v1",
                                                            "test-thumbnail-v1")
    assert analysis.settings_fingerprint == SETTINGS.fingerprint()


def test_crops_cut_by_the_edge_are_dropped_but_still_tracked(analysis: VideoAnalysis) -> None:
    # Walker 1 enters across the left edge (frames 0-2) and reaches the right one in frame 39.
    assert analysis.crops_dropped == {"edge": 2}
    assert analysis.crops_kept + sum(analysis.crops_dropped.values()) == analysis.detections == 40
    assert len(analysis.observations) == analysis.crops_kept
    first = [o for o in analysis.observations if o.track == 0]
    assert [o.frame for o in first] == list(range(4, 39, 2))
    assert all(not o.quality.edge_cut and abs(o.quality.height - 80) <= 2 for o in first)


def test_members_best_crops_and_embeddings(analysis: VideoAnalysis) -> None:
    for track in analysis.tracks:
        frames = [m.frame for m in track.members]
        assert len(frames) == SETTINGS.max_members and frames == sorted(frames)
        assert track.start_frame <= frames[0] and frames[-1] <= track.end_frame
        assert frames[-1] - frames[0] >= 20  # spread over the track, not bunched
        vectors = track.member_embeddings
        assert vectors.shape == (4, 64) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        assert np.linalg.norm(track.embedding) == pytest.approx(1.0, rel=1e-5)
        qualities = [c.quality.quality for c in track.best_crops]
        assert len(qualities) == SETTINGS.best_crops
        assert qualities == sorted(qualities, reverse=True)
        for crop in track.best_crops:
            image = cv2.imdecode(np.frombuffer(crop.jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape[:2] == (crop.bbox[3], crop.bbox[2])
            assert crop.frame in frames
    one, two = analysis.tracks
    assert float(one.embedding @ two.embedding) < min(one.member_embeddings @ one.embedding)


def test_the_same_input_gives_the_same_output(two_walkers: Path, analysis: VideoAnalysis,
                                              thumbnail_embedder: Embedder) -> None:
    again = analyse_video(two_walkers, SETTINGS, ColourDetector(), thumbnail_embedder)
    assert without_timing(again) == without_timing(analysis)


def test_progress_counts_every_frame(two_walkers: Path, colour_detector: ColourDetector,
                                     thumbnail_embedder: Embedder) -> None:
    reports: list[int] = []
    result = analyse_video(two_walkers, SETTINGS, colour_detector, thumbnail_embedder,
                           progress=reports.append)
    assert sum(reports) == result.frames_read == 70 and min(reports) > 0


class CountingEmbedder(ThumbnailEmbedder):
    """The fake embedder, noting how many crops each call gets."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def _embed(self, images: Sequence[BGRImage]) -> np.ndarray:
        self.calls.append(len(images))
        return super()._embed(images)


def test_embedder_calls_are_batched_across_tracks(two_walkers: Path,
                                                  colour_detector: ColourDetector) -> None:
    embedder = CountingEmbedder()
    analyse_video(two_walkers, SETTINGS, colour_detector, embedder)
    assert embedder.calls == [2 * SETTINGS.max_members]


def test_unreadable_files_raise_video_error(tmp_path: Path, colour_detector: ColourDetector,
                                            thumbnail_embedder: Embedder) -> None:
    path = tmp_path / "broken.avi"
    path.write_bytes(b"RIFF....AVI garbage")
    with pytest.raises(VideoError):
        analyse_video(path, SETTINGS, colour_detector, thumbnail_embedder)


def test_short_tracks_get_fewer_members(two_walkers: Path, colour_detector: ColourDetector,
                                        thumbnail_embedder: Embedder) -> None:
    settings = replace(SETTINGS, crops_per_member=10)
    analysis = analyse_video(two_walkers, settings, colour_detector, thumbnail_embedder)
    kept = [sum(o.track == i for o in analysis.observations) for i in range(2)]
    assert kept == [18, 20]
    assert [len(t.members) for t in analysis.tracks] == [2, 2]


class TilingColourDetector(ColourDetector):
    """The colour-blob detector with a 100x100 'input', so that its frames tile; records each call's tiles."""

    input_size = (100, 100)

    def __init__(self) -> None:
        super().__init__()
        self.tiled: list[bool] = []

    def detect(self, image: BGRImage, min_score: float | None = None, *,
               tiles: bool = True) -> list[Detection]:
        self.tiled.append(tiles and len(self.windows(image.shape[1], image.shape[0])) > 1)
        return super().detect(image, min_score, tiles=tiles)


@pytest.mark.parametrize("tile_every", [1, 2, 3])
def test_every_nth_analysed_frame_is_tiled_and_tracks_carry_between(
        two_walkers: Path, thumbnail_embedder: Embedder, tile_every: int) -> None:
    detector = TilingColourDetector()
    analysis = analyse_video(two_walkers, replace(SETTINGS, tile_every=tile_every), detector,
                             thumbnail_embedder)
    assert len(detector.tiled) == analysis.frames_analysed
    assert detector.tiled == [i % tile_every == 0 for i in range(analysis.frames_analysed)]
    # Tiled or not, each walker is one track over the same time range as without tiling.
    assert [(t.start_frame, t.end_frame) for t in analysis.tracks] == [(0, 38), (20, 58)]
