"""Choosing and reading the frames to analyse."""

from __future__ import annotations

from pathlib import Path

import pytest

from footage.sampling import VideoError, probe_video, read_frames, sample_indices
from tests.footage.synthetic import Walker, write_video


def test_indices_are_evenly_spaced_and_deterministic() -> None:
    assert sample_indices(10.0, 2.0, 21) == [0, 5, 10, 15, 20]
    assert sample_indices(25.0, 2.0, 60) == [0, 13, 25, 38, 50]  # step 12.5, halves round up
    assert sample_indices(30.0, 2.0, 1) == [0]
    assert sample_indices(5.0, 10.0, 4) == [0, 1, 2, 3]  # never more than every frame
    assert sample_indices(10.0, 2.0, 0) == []


def test_read_frames_decodes_only_the_sampled_ones(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", [Walker(1, 0, 22, 0, 50, dx=10)], 23)
    info = probe_video(path)
    assert (info.fps, info.frame_count, info.width, info.height) == (10.0, 23, 320, 240)
    frames = list(read_frames(path, info.fps, 2.0))
    assert [index for index, _ in frames] == list(range(23))
    decoded = [index for index, image in frames if image is not None]
    assert decoded == sample_indices(10.0, 2.0, 23)
    assert all(image.shape == (240, 320, 3) for _, image in frames if image is not None)


def test_non_videos_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_text("not a video")
    with pytest.raises(VideoError, match="cannot open"):
        probe_video(path)
