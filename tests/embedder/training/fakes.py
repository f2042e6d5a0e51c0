"""Tiny generated per-person training folders for the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_training_tree(root: Path, persons: int = 6) -> Path:
    """Write ``persons`` folders of 48x24 seeded colour-block images (4 to 5 per person)."""
    for person in range(persons):
        folder = root / f"{person:04d}"
        folder.mkdir(parents=True)
        base = np.random.default_rng(person).integers(0, 256, size=(4, 2, 3)).astype(np.uint8)
        for n in range(4 + person % 2):
            noise = np.random.default_rng(100 * person + n).integers(-20, 21, size=(48, 24, 3))
            image = np.clip(cv2.resize(base, (24, 48), interpolation=cv2.INTER_NEAREST) + noise, 0, 255)
            cv2.imwrite(str(folder / f"{person:04d}_{n:02d}.png"), image.astype(np.uint8))
    return root
