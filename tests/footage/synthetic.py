"""Synthetic footage: textured, saturated 'walkers' crossing a static grey scene, and a detector
that finds them by colour. Importable by worker processes as ``tests.footage.synthetic``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from base.images import BGRImage
from detector.base import Detection, Detector

WIDTH, HEIGHT = 320, 240
FPS = 10.0
WALKER_SIZE = (32, 80)  # (width, height) in pixels


@dataclass(frozen=True, slots=True)
class Walker:
    """A person-sized patch moving in a straight line, visible in frames [first, last]."""

    pattern: int
    first: int
    last: int
    x: float
    y: float
    dx: float = 0.0
    dy: float = 0.0
    size: tuple[int, int] = WALKER_SIZE

    def box(self, frame: int) -> tuple[int, int, int, int]:
        """Return the (x, y, w, h) box at ``frame``, possibly partly outside the image."""
        step = frame - self.first
        return (round(self.x + self.dx * step), round(self.y + self.dy * step), *self.size)


def background() -> BGRImage:
    """Return the static scene: smooth grey texture, no colour, seeded."""
    noise = np.random.default_rng(7).integers(60, 200, size=(HEIGHT // 8, WIDTH // 8))
    grey = cv2.resize(noise.astype(np.uint8), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def pattern(seed: int, size: tuple[int, int] = WALKER_SIZE) -> BGRImage:
    """Return a walker's look: blocks of saturated colours of a seeded palette."""
    rng = np.random.default_rng(seed)
    hues = rng.integers(0, 180, size=(8, 4))
    values = rng.integers(130, 256, size=(8, 4))
    hsv = np.stack([hues, np.full_like(hues, 255), values], axis=-1).astype(np.uint8)
    blocks = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return cv2.resize(blocks, size, interpolation=cv2.INTER_NEAREST)


def render(walkers: Sequence[Walker], frame: int) -> BGRImage:
    """Draw the scene at ``frame`` with every walker visible then, clipped to the image."""
    image = background()
    for walker in walkers:
        if not walker.first <= frame <= walker.last:
            continue
        x, y, w, h = walker.box(frame)
        left, top = max(x, 0), max(y, 0)
        right, bottom = min(x + w, WIDTH), min(y + h, HEIGHT)
        if right > left and bottom > top:
            image[top:bottom, left:right] = pattern(walker.pattern, (w, h))[
                top - y:bottom - y, left - x:right - x]
    return image


def write_video(path: Path, walkers: Sequence[Walker], frames: int, fps: float = FPS) -> Path:
    """Write ``frames`` frames of the scene as MJPG AVI and return ``path``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"cannot write {path}"
    try:
        for frame in range(frames):
            writer.write(render(walkers, frame))
    finally:
        writer.release()
    return path


class ColourDetector(Detector):
    """Finds saturated blobs on the grey scene: each connected blob is one 'person'."""

    model_id = "test-colour-blobs-v1"
    min_area = 150
    score = 0.9

    def _load(self) -> None:
        """Nothing to load."""

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        """Threshold saturation, clean the mask and box each large enough blob."""
        if self.score < min_score:
            return [[] for _ in images]
        found = []
        for image in images:
            saturated = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[:, :, 1] > 80
            mask = cv2.morphologyEx(saturated.astype(np.uint8), cv2.MORPH_OPEN,
                                    np.ones((3, 3), np.uint8))
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            found.append([Detection(int(x), int(y), int(w), int(h), self.score)
                          for x, y, w, h, area in stats[1:count].tolist()
                          if area >= self.min_area])
        return found
