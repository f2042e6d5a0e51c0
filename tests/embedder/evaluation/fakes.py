"""A deterministic colour embedder and tiny generated per-person folders for the tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage
from embedder.base import Embedder
from embedder.metadata import ModelMetadata

# Top and bottom BGR colours of each person (shirt, trousers).
PERSON_COLOURS = {
    "p0": ((200, 40, 40), (40, 40, 200)),
    "p1": ((40, 200, 40), (200, 200, 40)),
    "p2": ((40, 40, 200), (40, 200, 200)),
    "p3": ((200, 200, 200), (30, 30, 30)),
}
CONFUSED_QUERY = "p3/p3_c1_1.png"  # drawn in p0's colours, so its rank-1 match is wrong


class ColourEmbedder(Embedder):
    """Embed an image as the centred mean colours of its top and bottom halves (6-D)."""

    model_id = "fake-colour"
    dim = 6

    def __init__(self, metadata: ModelMetadata | None = None) -> None:
        super().__init__()
        self.metadata = metadata

    def _load(self) -> None:
        """Load nothing."""

    def _embed(self, images: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return (N, 6) centred half-image mean colours."""
        rows = []
        for image in images:
            half = image.shape[0] // 2
            rows.append(np.concatenate([image[:half].mean(axis=(0, 1)), image[half:].mean(axis=(0, 1))]))
        return np.asarray(rows, dtype=np.float32) - 128.0


def person_image(top: tuple[int, int, int], bottom: tuple[int, int, int], shade: int) -> BGRImage:
    """Draw a 48x24 two-colour image, brightened by ``shade``."""
    image = np.empty((48, 24, 3), dtype=np.uint8)
    image[:24] = np.clip(np.add(top, shade), 0, 255)
    image[24:] = np.clip(np.add(bottom, shade), 0, 255)
    return image


def write_split(root: Path) -> tuple[Path, Path]:
    """Write query (camera 1) and gallery (camera 2) folders with two images per person."""
    query, gallery = root / "query", root / "gallery"
    for person, (top, bottom) in PERSON_COLOURS.items():
        for folder, camera, shades in ((query, 1, (0, 25)), (gallery, 2, (-20, 10))):
            (folder / person).mkdir(parents=True)
            for n, shade in enumerate(shades):
                cv2.imwrite(str(folder / person / f"{person}_c{camera}_{n}.png"),
                            person_image(top, bottom, shade))
    cv2.imwrite(str(query / CONFUSED_QUERY), person_image(*PERSON_COLOURS["p0"], 5))
    return query, gallery

