"""Embedders backed by a trained re-ID Keras model: in memory, or from a model directory."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from base.images import BGRImage
from embedder.backbone import ibn  # noqa: F401  (registers InstanceBatchNorm, which IBN models' model.keras name)
from embedder.base import Embedder
from embedder.metadata import ModelMetadata
from embedder.preprocess import to_model_input

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"


def flip_averaged(model: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """Return ``model``'s outputs for ``images`` plus those for their mirror images, in one pass."""
    outputs = model(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
    direct, mirrored = tf.split(outputs, 2, axis=0)
    return direct + mirrored


class KerasEmbedder(Embedder):
    """Embeds person crops with a Keras model from (N, H, W, 3) RGB 0..255 to (N, D) vectors.

    ``metadata`` supplies ``model_id``, ``dim``, the input size, the centre crops (an image's
    embedding sums the outputs for its views) and whether to flip-average.
    """

    metadata: ModelMetadata

    def __init__(self, model: keras.Model | None, metadata: ModelMetadata, batch_size: int = 32) -> None:
        """Wrap ``model`` (None: a subclass provides it on ``load``).

        Raises:
            ValueError: ``batch_size`` is not positive.
        """
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.metadata = metadata
        self.model_id = metadata.model_id
        self.dim = metadata.embedding_dim
        height, width = metadata.input_size
        self.input_size = (height, width)
        self.batch_size = batch_size
        self._model = model
        self._forward: tf.types.experimental.PolymorphicFunction | None = None

    def _read_model(self) -> keras.Model:
        """Return the model to embed with."""
        assert self._model is not None
        return self._model

    @property
    def keras_model(self) -> keras.Model:
        """Return the Keras model that embeds, loading it on first use."""
        self.load()
        assert self._model is not None
        return self._model

    def _load(self) -> None:
        """Get the model and trace its inference pass for any batch size."""
        self._model = model = self._read_model()
        spec = tf.TensorSpec((None, *self.input_size, 3), tf.float32)
        if self.metadata.flip_average:
            self._forward = tf.function(lambda x: flip_averaged(model, x), input_signature=[spec])
        else:
            self._forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def _embed(self, images: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return the raw (N, dim) embeddings of ``images``, ``batch_size`` at a time."""
        return np.concatenate([self._embed_views(images[start:start + self.batch_size])
                               for start in range(0, len(images), self.batch_size)])

    def _embed_views(self, batch: Sequence[BGRImage]) -> NDArray[np.float32]:
        """Return the sum of the model's outputs for each centre crop of ``batch``."""
        assert self._forward is not None
        return np.sum([self._forward(to_model_input(batch, self.input_size, crop)).numpy()
                       for crop in self.metadata.center_crops], axis=0)


class ReidEmbedder(KerasEmbedder):
    """Embeds with the model saved in a directory holding ``model.keras`` and ``metadata.json``."""

    def __init__(self, model_dir: Path, batch_size: int = 32) -> None:
        """Read the directory's metadata; the model itself loads on first use.

        Raises:
            FileNotFoundError: ``model_dir`` lacks ``model.keras`` or ``metadata.json``.

        Loading raises ``IntegrityError`` when ``model.keras`` is not the file the metadata records.
        """
        self.model_dir = Path(model_dir)
        if not (self.model_dir / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{self.model_dir} holds no {MODEL_FILE}")
        super().__init__(None, ModelMetadata.load(self.model_dir), batch_size)

    def _read_model(self) -> keras.Model:
        """Load ``model.keras`` from the model directory."""
        model = keras.saving.load_model(self.metadata.verified(self.model_dir, MODEL_FILE), compile=False)
        log.info("loaded %s from %s", self.model_id, self.model_dir)
        return model
