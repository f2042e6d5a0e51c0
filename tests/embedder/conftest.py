"""Fixtures shared by the embedder tests: reference photographs and recorded torch outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "mobilenet_v2_reference.npz"
PHOTO_SIZE = 224


@pytest.fixture(scope="session")
def reference() -> dict[str, NDArray]:
    """Return the torchvision outputs recorded by ``record_mobilenet_v2_reference.py``."""
    with np.load(REFERENCE_FILE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def photos_224() -> dict[str, NDArray[np.uint8]]:
    """Return scikit-image's coffee and chelsea photos as 224x224 RGB uint8, resized as the recorder does."""
    skimage_data = pytest.importorskip("skimage.data")
    skimage_transform = pytest.importorskip("skimage.transform")
    photos = {}
    for name in ("coffee", "chelsea"):
        image = getattr(skimage_data, name)()
        resized = skimage_transform.resize(image, (PHOTO_SIZE, PHOTO_SIZE), order=1,
                                           anti_aliasing=True, preserve_range=True)
        photos[name] = np.clip(np.round(resized), 0, 255).astype(np.uint8)
    return photos
