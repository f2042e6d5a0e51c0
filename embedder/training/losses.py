"""Metric-learning losses for re-identification, as TensorFlow functions and one Keras layer.

Shapes: ``features`` (B, D) float, ``labels`` (B,) int, ``logits`` (B, C) float.
"""

from __future__ import annotations

import keras
import tensorflow as tf

TRIPLET_MARGIN = 0.3
LABEL_SMOOTHING = 0.1


def pairwise_distances(features: tf.Tensor) -> tf.Tensor:
    """Return the (B, B) Euclidean distances between the rows of ``features`` (B, D).

    Squared distances are clamped at 1e-12 before the square root, so the diagonal has a
    finite gradient.
    """
    squared_norms = tf.reduce_sum(tf.square(features), axis=1)
    squared = (squared_norms[:, None] + squared_norms[None, :]
               - 2.0 * tf.matmul(features, features, transpose_b=True))
    return tf.sqrt(tf.maximum(squared, 1e-12))


def batch_hard_triplet_loss(features: tf.Tensor, labels: tf.Tensor,
                            margin: float = TRIPLET_MARGIN) -> tf.Tensor:
    """Return the batch-hard triplet loss (Hermans et al. 2017), a scalar.

    For each anchor, the farthest same-label sample and the nearest other-label sample are
    taken; the loss is the mean of ``max(0, d_ap - d_an + margin)``. Distances are Euclidean
    on the unnormalized features, as in Luo et al.'s BNNeck recipe (the triplet acts before
    the BN neck; the identity loss shapes the normalized space after it).

    Args:
        features: (B, D) float features.
        labels: (B,) int identity labels; each anchor needs a positive and a negative.
    """
    distances = pairwise_distances(features)
    same = tf.equal(labels[:, None], labels[None, :])
    hardest_positive = tf.reduce_max(tf.where(same, distances, tf.zeros_like(distances)), axis=1)
    far = tf.reduce_max(distances) + 1.0
    hardest_negative = tf.reduce_min(tf.where(same, far, distances), axis=1)
    return tf.reduce_mean(tf.nn.relu(hardest_positive - hardest_negative + margin))


def distillation_loss(predicted: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Return the mean cosine distance ``1 - p . t`` between (B, D) unit rows, a scalar in 0..2."""
    return tf.reduce_mean(1.0 - tf.reduce_sum(predicted * targets, axis=1))


def smoothed_cross_entropy(logits: tf.Tensor, labels: tf.Tensor,
                           epsilon: float = LABEL_SMOOTHING) -> tf.Tensor:
    """Return the cross-entropy against targets ``(1 - epsilon) * one_hot + epsilon / C``, a scalar.

    Args:
        logits: (B, C) float class scores.
        labels: (B,) int classes in 0..C-1.
    """
    num_classes = tf.shape(logits)[1]
    targets = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    targets = (1.0 - epsilon) * targets + epsilon / tf.cast(num_classes, logits.dtype)
    return tf.reduce_mean(tf.reduce_sum(-targets * tf.nn.log_softmax(logits, axis=1), axis=1))


def center_loss(features: tf.Tensor, labels: tf.Tensor, centers: tf.Tensor) -> tf.Tensor:
    """Return ``mean_i ||features_i - centers[labels_i]||^2 / 2`` (Wen et al. 2016), a scalar.

    Args:
        features: (B, D) float features.
        labels: (B,) int classes.
        centers: (C, D) float class centers.
    """
    offsets = features - tf.gather(centers, labels)
    return 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(offsets), axis=1))


def decorrelation_penalty(features: tf.Tensor) -> tf.Tensor:
    """Return the mean squared off-diagonal entry of the batch covariance of ``features``' dims.

    The (D, D) covariance is never formed: ``||cov||_F^2`` equals the squared Frobenius norm of
    the (B, B) Gram matrix of the centred batch over ``(B - 1)^2``.

    Args:
        features: (B, D) float features, B >= 2, D >= 2.
    """
    centred = features - tf.reduce_mean(features, axis=0, keepdims=True)
    batch = tf.cast(tf.shape(features)[0], features.dtype)
    dims = tf.cast(tf.shape(features)[1], features.dtype)
    gram = tf.matmul(centred, centred, transpose_b=True)
    total = tf.reduce_sum(tf.square(gram)) / tf.square(batch - 1.0)
    diagonal = tf.reduce_sum(tf.square(tf.reduce_sum(tf.square(centred), axis=0) / (batch - 1.0)))
    return (total - diagonal) / (dims * (dims - 1.0))


@keras.saving.register_keras_serializable(package="reid")
class CosineClassifier(keras.layers.Layer):
    """Score (B, D) features against C class weights by ``scale`` times their cosine similarity.

    The "normalize-scale" softmax head (NormFace, Wang et al. 2017): both the features and the
    class weights are L2-normalized, so logits lie in [-scale, scale].
    """

    def __init__(self, num_classes: int, scale: float = 16.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.scale = scale

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the (D, C) class weights."""
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.num_classes),
            initializer=keras.initializers.RandomNormal(stddev=0.01))

    def call(self, features: tf.Tensor) -> tf.Tensor:
        """Return (B, C) logits for (B, D) features."""
        unit_features = tf.math.l2_normalize(features, axis=1, epsilon=1e-12)
        unit_kernel = tf.math.l2_normalize(self.kernel, axis=0, epsilon=1e-12)
        return self.scale * tf.matmul(unit_features, unit_kernel)

    def get_config(self) -> dict:
        """Return the constructor arguments."""
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale}
