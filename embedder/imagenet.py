"""The ImageNet baseline: torchvision's MobileNetV2 features, globally average-pooled."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from embedder.backbone.mobilenet_v2 import FEATURE_DIM, build_mobilenet_v2
from embedder.base import BGRImage, Embedder
from embedder.preprocess import to_model_input

log = logging.getLogger(__name__)


class ImageNetEmbedder(Embedder):
    """Embeds person crops with ImageNet MobileNetV2 features at 256x128; no re-ID training."""

    model_id = "imagenet-mobilenetv2-256x128"
    dim = FEATURE_DIM
    input_size = (256, 128)  # (height, width): the usual person aspect ratio

    def __init__(self, batch_size: int = 32) -> None:
        """Set up a lazily loaded embedder.

        Args:
            batch_size: images per forward pass.

        Raises:
            ValueError: ``batch_size`` is not positive.
        """
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self._forward: tf.types.experimental.PolymorphicFunction | None = None

    def _load(self) -> None:
        """Build the backbone with ImageNet weights, add pooling and trace the forward pass."""
        backbone = build_mobilenet_v2((*self.input_size, 3), weights=True, include_top=False)
        pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
        model = keras.Model(backbone.input, pooled, name="imagenet_embedder")
        spec = tf.TensorSpec((None, *self.input_size, 3), tf.float32)
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        log.info("loaded %s", self.model_id)

    def _embed(self, images: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return the raw pooled (N, 1280) features of ``images``, ``batch_size`` at a time."""
        assert self._forward is not None
        batches = [
            self._forward(to_model_input(images[start:start + self.batch_size], self.input_size)).numpy()
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(batches)
