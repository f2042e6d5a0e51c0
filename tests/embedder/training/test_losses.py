"""The losses on tiny batches with hand-computed answers."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from embedder.training.losses import (
    CosineClassifier,
    batch_hard_triplet_loss,
    center_loss,
    decorrelation_penalty,
    distillation_loss,
    pairwise_distances,
    smoothed_cross_entropy,
)


def test_pairwise_distances_are_euclidean() -> None:
    features = tf.constant([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    expected = [[0.0, 5.0, 1.0], [5.0, 0.0, math.sqrt(18.0)], [1.0, math.sqrt(18.0), 0.0]]
    np.testing.assert_allclose(pairwise_distances(features), expected, atol=1e-5)


def test_batch_hard_triplet_takes_farthest_positive_and_nearest_negative() -> None:
    # 1-D points 0, 2 (person 0) and 1, 4 (person 1). Per anchor, (hardest positive, hardest
    # negative): 0 -> (2, 1), 2 -> (2, 1), 1 -> (3, 1), 4 -> (3, 2); hinge at margin 0.3.
    features = tf.constant([[0.0], [2.0], [1.0], [4.0]])
    labels = tf.constant([0, 0, 1, 1])
    expected = ((2 - 1 + 0.3) + (2 - 1 + 0.3) + (3 - 1 + 0.3) + (3 - 2 + 0.3)) / 4
    assert float(batch_hard_triplet_loss(features, labels)) == pytest.approx(expected, abs=1e-5)


def test_batch_hard_triplet_is_zero_when_classes_are_apart_by_the_margin() -> None:
    features = tf.constant([[0.0], [0.1], [5.0], [5.2]])
    assert float(batch_hard_triplet_loss(features, tf.constant([0, 0, 1, 1]))) == 0.0


def test_batch_hard_triplet_gradient_is_finite_for_identical_features() -> None:
    features = tf.Variable(tf.ones((4, 3)))
    with tf.GradientTape() as tape:
        loss = batch_hard_triplet_loss(features, tf.constant([0, 0, 1, 1]))
    assert np.all(np.isfinite(tape.gradient(loss, features).numpy()))


def test_distillation_loss_is_the_mean_cosine_distance_of_unit_rows() -> None:
    predicted = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    targets = tf.constant([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])  # distances 0, 1 and 2
    assert float(distillation_loss(predicted, targets)) == pytest.approx(1.0)
    assert float(distillation_loss(predicted[:1], targets[:1])) == 0.0


def test_smoothed_cross_entropy_matches_hand_computation() -> None:
    # Two classes, epsilon 0.1: targets (0.95, 0.05); softmax of (ln 3, 0) is (3/4, 1/4).
    logits = tf.constant([[math.log(3.0), 0.0]])
    expected = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert float(smoothed_cross_entropy(logits, tf.constant([0]))) == pytest.approx(expected, rel=1e-5)


def test_smoothed_cross_entropy_of_uniform_logits_is_log_classes() -> None:
    loss = smoothed_cross_entropy(tf.zeros((3, 7)), tf.constant([0, 3, 6]))
    assert float(loss) == pytest.approx(math.log(7.0), rel=1e-6)


def test_center_loss_is_half_the_mean_squared_distance_to_the_class_center() -> None:
    features = tf.constant([[1.0, 0.0], [0.0, 3.0]])
    centers = tf.constant([[0.0, 0.0], [0.0, 1.0]])
    # Squared distances 1 and 4; half their mean is 1.25.
    assert float(center_loss(features, tf.constant([0, 1]), centers)) == pytest.approx(1.25)


def test_decorrelation_of_two_identical_dimensions() -> None:
    # Centred rows (1, 1), (-1, -1): covariance [[2, 2], [2, 2]]; off-diagonal mean square 4.
    assert float(decorrelation_penalty(tf.constant([[1.0, 1.0], [-1.0, -1.0]]))) == pytest.approx(4.0)


def test_decorrelation_of_uncorrelated_dimensions_is_zero() -> None:
    features = tf.constant([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert float(decorrelation_penalty(features)) == pytest.approx(0.0, abs=1e-7)


def test_decorrelation_matches_numpy_covariance() -> None:
    features = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    covariance = np.cov(features, rowvar=False)
    off_diagonal = covariance[~np.eye(5, dtype=bool)]
    expected = np.mean(off_diagonal ** 2)
    assert float(decorrelation_penalty(tf.constant(features))) == pytest.approx(expected, rel=1e-4)


def test_cosine_classifier_scores_scaled_cosines() -> None:
    layer = CosineClassifier(2, scale=10.0)
    layer.build((None, 2))
    layer.kernel.assign([[1.0, 0.0], [0.0, 2.0]])  # class 0 along x, class 1 along y
    logits = layer(tf.constant([[3.0, 4.0]]))
    np.testing.assert_allclose(logits, [[6.0, 8.0]], rtol=1e-6)


def test_cosine_classifier_round_trips_its_config() -> None:
    layer = CosineClassifier(5, scale=30.0, name="cos")
    copy = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (copy.num_classes, copy.scale, copy.name) == (5, 30.0, "cos")
