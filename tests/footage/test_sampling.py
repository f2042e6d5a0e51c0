"""Choosing and reading the frames to analyse."""

from __future__ import annotations

from pathlib import Path

import pytest

from footage.sampling import VideoError, cut_clip, probe_video, read_frames, sample_indices
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


def test_a_clip_is_cut_as_webm_no_wider_than_asked(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.avi", [Walker(1, 0, 22, 0, 50, dx=10)], 23)
    clip = tmp_path / "clip.webm"
    clip.write_bytes(cut_clip(path, 5, 14, 10.0, max_width=160))
    assert clip.read_bytes()[:4] == b"\x1aE\xdf\xa3"  # the EBML header of WebM
    info = probe_video(clip)
    assert (info.width, info.height) == (160, 120)
    assert len(list(read_frames(clip, info.fps, info.fps))) == 10
    with pytest.raises(VideoError, match="cannot read frame 99"):
        cut_clip(path, 99, 120, 10.0)
