"""Skipping static frames: the moving share of a frame and the analyse-or-skip policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from footage.analysis import analyse_video
from footage.motion import MotionMeter, needs_analysis
from footage.settings import FootageSettings
from tests.conftest import ThumbnailEmbedder
from tests.footage.synthetic import ColourDetector, Walker, render, write_video


def test_static_frames_do_not_move_and_a_walker_does() -> None:
    meter = MotionMeter(width=160)
    assert meter.moving_fraction(render([], 0)) == 1.0  # no background yet
    assert all(meter.moving_fraction(render([], i)) == 0.0 for i in range(1, 5))
    walker = Walker(1, 0, 10, 100, 80, dx=10)
    fractions = [meter.moving_fraction(render([walker], i)) for i in range(5)]
    assert min(fractions) > 0.01


def test_static_frames_are_analysed_only_while_a_track_was_seen_recently() -> None:
    assert needs_analysis(0.01, 0.001, None, 2.0)
    assert not needs_analysis(0.0, 0.001, None, 2.0)
    assert needs_analysis(0.0, 0.001, 1.5, 2.0)
    assert not needs_analysis(0.0, 0.001, 2.5, 2.0)


def test_static_stretches_of_a_video_are_skipped(tmp_path: Path) -> None:
    # Empty scene for frames 0-29, a walker in frames 30-49, empty again for frames 50-99.
    video = write_video(tmp_path / "quiet.avi", [Walker(4, 30, 49, 40, 80, dx=10)], 100)
    settings = replace(FootageSettings(), analysis_fps=5.0, motion_hold_s=1.0)
    analysis = analyse_video(video, settings, ColourDetector(), ThumbnailEmbedder())
    # Sampled: every 2nd frame = 50. Analysed: frame 0 (first), the 10 frames with the walker,
    # and the hold: 1 s = 5 sampled frames after the walker was last seen.
    assert analysis.frames_sampled == 50
    assert analysis.frames_analysed + analysis.frames_static == 50
    assert 14 <= analysis.frames_analysed <= 18, analysis
    assert len(analysis.tracks) == 1
