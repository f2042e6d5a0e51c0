"""The ImageNet baseline: torchvision's MobileNetV2 features, globally average-pooled."""

from __future__ import annotations

import logging

import keras

from embedder.backbone.mobilenet_v2 import FEATURE_DIM, build_mobilenet_v2
from embedder.metadata import ModelMetadata
from embedder.reid_model import KerasEmbedder

log = logging.getLogger(__name__)

METADATA = ModelMetadata(model_id="imagenet-mobilenetv2-256x128", input_size=(256, 128),
                         embedding_dim=FEATURE_DIM,
                         training_data="ImageNet-1k classification only; no re-identification training")


class ImageNetEmbedder(KerasEmbedder):
    """Embeds person crops with ImageNet MobileNetV2 features at 256x128; no re-ID training."""

    def __init__(self, batch_size: int = 32) -> None:
        """Set up a lazily built embedder.

        Raises:
            ValueError: ``batch_size`` is not positive.
        """
        super().__init__(None, METADATA, batch_size)

    def _read_model(self) -> keras.Model:
        """Build the backbone with ImageNet weights and add global average pooling."""
        backbone = build_mobilenet_v2((*self.input_size, 3), weights=True, include_top=False)
        pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
        log.info("built %s", self.model_id)
        return keras.Model(backbone.input, pooled, name="imagenet_embedder")
