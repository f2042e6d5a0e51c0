"""Reading videos with OpenCV and choosing which frames to analyse."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2

from base.images import BGRImage


class VideoError(ValueError):
    """A file OpenCV cannot read as a video; the message says why."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says about a video; ``frame_count`` may be 0 when unknown."""

    fps: float
    frame_count: int
    width: int
    height: int


def probe_video(path: Path) -> VideoInfo:
    """Read a video's frame rate, frame count and size without decoding it.

    Raises:
        VideoError: OpenCV cannot open the file or it reports no usable frame rate.
    """
    capture = _open(path)
    try:
        info = VideoInfo(fps=float(capture.get(cv2.CAP_PROP_FPS)),
                         frame_count=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                         width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if not (math.isfinite(info.fps) and info.fps > 0):
        raise VideoError(f"{path}: OpenCV reports no usable frame rate ({info.fps})")
    return info


def _open(path: Path) -> cv2.VideoCapture:
    """Open a video for reading.

    Raises:
        VideoError: OpenCV cannot open it.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: OpenCV cannot open this file as a video")
    return capture


def read_frame(path: Path, index: int) -> BGRImage:
    """Decode frame ``index`` (from 0) of a video.

    Raises:
        VideoError: OpenCV cannot open the file or read that frame.
    """
    capture = _open(path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise VideoError(f"{path}: cannot read frame {index}")
    return cast(BGRImage, frame)  # VideoCapture decodes to 8-bit BGR


def cut_clip(path: Path, first: int, last: int, fps: float, *, max_width: int = 640) -> bytes:
    """Re-encode frames ``first`` to ``last`` of a video as WebM (VP8, which browsers play), at most ``max_width`` wide.

    Raises:
        VideoError: OpenCV cannot open the file, read frame ``first``, or write WebM.
    """
    capture = _open(path)
    writer = None
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.webm"
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, first)
            for _ in range(first, last + 1):
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:  # the clip's size, from the first frame's (even, at most max_width wide)
                    height, width = frame.shape[:2]
                    scale = min(1.0, max_width / width)
                    size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
                    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"VP80"), fps, size)
                    if not writer.isOpened():
                        raise VideoError("this OpenCV cannot write WebM (VP8) clips")
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if writer is None:
            raise VideoError(f"{path}: cannot read frame {first}")
        return clip.read_bytes()


def sample_step(fps: float, analysis_fps: float) -> float:
    """Return the spacing in frames between analysed frames, at least 1."""
    return max(1.0, fps / analysis_fps)


def sample_indices(fps: float, analysis_fps: float, frame_count: int) -> list[int]:
    """List the frames to analyse: ``floor(k * step + 0.5)`` for k = 0, 1, ... below the count.

    Evenly spaced and deterministic: ``step = fps / analysis_fps`` (every frame when the
    video has no more than ``analysis_fps`` frames per second).
    """
    step = sample_step(fps, analysis_fps)
    indices = []
    k = 0
    while (index := math.floor(k * step + 0.5)) < frame_count:
        indices.append(index)
        k += 1
    return indices


def read_frames(path: Path, fps: float,
                analysis_fps: float) -> Iterator[tuple[int, BGRImage | None]]:
    """Yield ``(index, frame)`` for every frame, the image only for those ``sample_indices`` picks.

    Frames in between are only grabbed, not converted (codecs with inter-frame compression
    still decode them). Reading stops at the first frame that fails, so the count in the
    container is never trusted; the caller counts frames from the indices.

    Raises:
        VideoError: OpenCV cannot open the file.
    """
    step = sample_step(fps, analysis_fps)
    capture = _open(path)
    try:
        index = k = 0
        while capture.grab():
            if index == math.floor(k * step + 0.5):
                k += 1
                ok, frame = capture.retrieve()
                if not ok:
                    return
                yield index, cast(BGRImage, frame)  # VideoCapture decodes to 8-bit BGR
            else:
                yield index, None
            index += 1
    finally:
        capture.release()
