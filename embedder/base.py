"""The embedder interface: person images in, L2-normalized float32 vectors out."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from base.images import BGRImage, check_bgr_image
from base.lifecycle import LazyModel
from embedder.metadata import ModelMetadata

FALLBACK_THRESHOLD = 0.5  # the match threshold of a model without a calibrated one


def l2_normalize(vectors: NDArray[np.floating], eps: float = 1e-12) -> NDArray[np.float32]:
    """Scale each row of ``vectors`` (N, D) to unit L2 norm; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must have shape (N, D), got {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, eps)


class Embedder(LazyModel):
    """Maps person crops to metric vectors; cosine similarity is their dot product.

    Subclasses set ``model_id`` (stable, changes whenever the vectors would) and ``dim``,
    and implement ``_load`` and ``_embed``. ``load`` is lazy and idempotent.
    """

    model_id: str
    dim: int
    metadata: ModelMetadata | None = None  # set by embedders loaded from a model directory

    def calibrated_threshold(self) -> float | None:
        """Return the match threshold that ``reid calibrate`` stored with the model, if any."""
        if self.metadata is None or self.metadata.threshold is None:
            return None
        return float(self.metadata.threshold)

    def match_threshold(self, configured: float | None = None) -> tuple[float, str]:
        """Return the match threshold to use and where it came from.

        Returns:
            ``(configured, "given")`` when one is configured, else the model's calibrated
            threshold with ``"calibrated"``, else ``(FALLBACK_THRESHOLD, "default")``.
        """
        if configured is not None:
            return float(configured), "given"
        calibrated = self.calibrated_threshold()
        if calibrated is not None:
            return calibrated, "calibrated"
        return FALLBACK_THRESHOLD, "default"

    def embed(self, images: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Embed BGR uint8 images (any sizes) into an (N, dim) float32 array of unit rows.

        Raises:
            TypeError: an image is not an (H, W, 3) uint8 array.
        """
        for i, image in enumerate(images):
            check_bgr_image(image, f"image {i}")
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        vectors = l2_normalize(self._embed(images))
        assert vectors.shape == (len(images), self.dim), vectors.shape
        return vectors

    @abc.abstractmethod
    def _embed(self, images: Sequence[BGRImage]) -> NDArray[np.floating]:
        """Return raw (N, dim) vectors for validated, non-empty ``images``."""
