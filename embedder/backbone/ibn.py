"""Instance-batch normalisation, IBN-a (Pan et al., "Two at Once", ECCV 2018), as one Keras layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from numpy.typing import NDArray


@keras.saving.register_keras_serializable(package="reid")
class InstanceBatchNorm(keras.layers.Layer):
    """Normalise the first ``instance_channels`` channels per image, the others by batch norm.

    The instance part takes each image's mean and variance of each channel over height and
    width, in training and inference alike, then a learnt scale and shift: having no running
    statistics, it removes an image's contrast and colour cast (its "style") even in a frozen
    block. The batch part is a ``BatchNormalization``, in inference mode when frozen.
    """

    def __init__(self, instance_channels: int, *, epsilon: float, momentum: float, **kwargs: Any) -> None:
        if instance_channels < 1:
            raise ValueError(f"instance_channels must be at least 1, got {instance_channels}")
        super().__init__(**kwargs)
        self.instance_channels = instance_channels
        self.epsilon = epsilon
        self.momentum = momentum
        self.batch_norm = keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name="batch_norm")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the instance part's (I,) gamma and beta and build the batch part on the rest."""
        channels = input_shape[-1]
        if channels is None or not self.instance_channels < channels:
            raise ValueError(f"{self.name}: {self.instance_channels} instance-normalised channels "
                             f"need more channels than that, got {channels}")
        self.gamma = self.add_weight(shape=(self.instance_channels,), initializer="ones", name="instance_gamma")
        self.beta = self.add_weight(shape=(self.instance_channels,), initializer="zeros", name="instance_beta")
        self.batch_norm.build((*input_shape[:-1], channels - self.instance_channels))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Normalise (N, H, W, C) ``inputs``: channels [0, I) per image, [I, C) by batch norm."""
        instance, batch = inputs[..., :self.instance_channels], inputs[..., self.instance_channels:]
        mean, variance = keras.ops.moments(instance, axes=(1, 2), keepdims=True)
        instance = (instance - mean) * keras.ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        return keras.ops.concatenate([instance, self.batch_norm(batch, training=training)], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """Return ``input_shape``."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the constructor's arguments."""
        return {**super().get_config(), "instance_channels": self.instance_channels,
                "epsilon": self.epsilon, "momentum": self.momentum}

    def assign_batch_norm(self, weights: Sequence[NDArray[np.float32]]) -> None:
        """Start from a batch norm over all C channels: its (C,) gamma, beta, moving mean and variance.

        The batch part keeps its channels' four; the instance part takes its channels' gamma
        and beta (instance-normalised channels, like batch-normalised ones, then have that
        scale and shift).

        Raises:
            ValueError: ``weights`` are not four arrays of this layer's channel count.
        """
        channels = self.instance_channels + self.batch_norm.gamma.shape[0]
        if len(weights) != 4 or any(np.shape(weight) != (channels,) for weight in weights):
            raise ValueError(f"{self.name} takes a batch norm's four ({channels},) arrays, "
                             f"got shapes {[np.shape(weight) for weight in weights]}")
        gamma, beta = weights[0], weights[1]
        self.gamma.assign(gamma[:self.instance_channels])
        self.beta.assign(beta[:self.instance_channels])
        self.batch_norm.set_weights([weight[self.instance_channels:] for weight in weights])
