"""The P x K sampler, the in-memory training set and the augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from embedder.training.data import (
    ERASE_FILL,
    PKSampler,
    augment,
    epoch_dataset,
    jitter_colour,
    load_training_set,
    zoom,
    zoom_view_windows,
)
from tests.embedder.training.fakes import write_training_tree

LABELS = np.repeat(np.arange(10), [2, 3, 4, 5, 6, 7, 8, 9, 1, 12])


def test_batches_hold_p_persons_times_k_images() -> None:
    sampler = PKSampler(LABELS, persons=4, per_person=2, seed=3)
    batches = sampler.epoch_batches(0)
    assert batches.shape[1] == 8 and len(batches) >= 4
    for batch in batches:
        persons = LABELS[batch].reshape(4, 2)
        assert np.all(persons == persons[:, :1])  # person-major groups of K
        assert len(set(persons[:, 0])) == 4  # P distinct persons


def test_an_epoch_uses_each_image_at_most_once_except_padded_persons() -> None:
    batches = PKSampler(LABELS, persons=4, per_person=2, seed=0).epoch_batches(5)
    used, counts = np.unique(batches, return_counts=True)
    lone = np.flatnonzero(LABELS == 8)  # one image, drawn with replacement to make a pair
    assert np.all(counts[~np.isin(used, lone)] == 1)


def test_sampler_is_deterministic_in_seed_and_epoch() -> None:
    first = PKSampler(LABELS, 4, 2, seed=7)
    again = PKSampler(LABELS, 4, 2, seed=7)
    np.testing.assert_array_equal(first.epoch_batches(2), again.epoch_batches(2))
    assert not np.array_equal(first.epoch_batches(2), first.epoch_batches(3))
    assert not np.array_equal(first.epoch_batches(2), PKSampler(LABELS, 4, 2, seed=8).epoch_batches(2))


def test_sampler_refuses_more_persons_than_the_data_has() -> None:
    with pytest.raises(ValueError, match="needs as many persons"):
        PKSampler(LABELS, persons=11, per_person=2, seed=0)


def test_training_set_is_resized_rgb_with_labels_remapped(train_dir: Path) -> None:
    data = load_training_set([train_dir], (32, 16), progress=False)
    assert data.images.shape == (27, 32, 16, 3) and data.images.dtype == np.uint8
    assert data.persons == tuple(f"0-train/{p:04d}" for p in range(6))
    assert sorted(set(data.labels.tolist())) == list(range(6))


def test_resuming_mid_epoch_replays_the_remaining_batches_exactly(train_dir: Path) -> None:
    data = load_training_set([train_dir], (32, 16), progress=False)
    sampler = PKSampler(data.labels, persons=3, per_person=2, seed=1)
    full = [tuple(t.numpy() for t in item) for item in epoch_dataset(data, sampler, epoch=4)]
    resumed = [tuple(t.numpy() for t in item) for item in epoch_dataset(data, sampler, 4, start_step=2)]
    assert [step for step, *_ in full] == list(range(len(full))) and len(full) > 2
    assert len(resumed) == len(full) - 2
    for (step, images, labels, indices), (step2, images2, labels2, indices2) in zip(
            full[2:], resumed, strict=True):
        assert step == step2
        np.testing.assert_array_equal(images, images2)
        np.testing.assert_array_equal(labels, labels2)
        np.testing.assert_array_equal(indices, indices2)
        np.testing.assert_array_equal(labels, data.labels[indices])  # indices name the batch's images


def test_augment_is_deterministic_in_its_seed_and_keeps_shape() -> None:
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 64, 32, 3)), tf.uint8)
    first = augment(images, tf.constant([1, 2]))
    assert first.shape == (8, 64, 32, 3) and first.dtype == tf.float32
    np.testing.assert_array_equal(first, augment(images, tf.constant([1, 2])))
    assert not np.array_equal(first, augment(images, tf.constant([1, 3])))


def test_random_erasing_fills_one_rectangle_with_the_mean_colour() -> None:
    images = tf.zeros((64, 64, 32, 3), tf.uint8) + 7  # no pixel starts at the fill colour
    out = augment(images, tf.constant([5, 5])).numpy()
    erased = np.all(out == np.float32(ERASE_FILL), axis=-1)
    hit = erased.any(axis=(1, 2))
    assert 0.3 < hit.mean() < 0.7  # p = 0.5
    for mask in erased[hit]:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask.sum() == len(rows) * len(cols)  # one solid rectangle
        assert 0.02 * 64 * 32 * 0.8 < mask.sum() < 0.4 * 64 * 32 * 1.2


def test_zoom_magnifies_each_axis_by_at_most_max_zoom_at_a_random_place() -> None:
    height, width = 64, 32
    rows = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None, None], (height, width, 3))
    cols = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :, None], (height, width, 3))
    images = tf.constant(np.stack([rows, cols] * 16))  # even images: row index; odd: column index
    out = zoom(images, tf.constant([3, 4], tf.int64), max_zoom=1.5).numpy()
    row_steps = np.diff(out[0::2, :, 0, 0], axis=1)
    col_steps = np.diff(out[1::2, 0, :, 0], axis=1)
    for steps in (row_steps, col_steps):  # the source step per output pixel is 1/zoom, constant per image
        np.testing.assert_allclose(steps, steps[:, :1].repeat(steps.shape[1], axis=1), atol=1e-3)
        assert np.all((steps[:, 0] >= 1 / 1.5 - 1e-4) & (steps[:, 0] <= 1 + 1e-4))
        assert steps[:, 0].std() > 0.02  # factors differ between images
    assert out[0::2, 0, 0, 0].std() > 0.5  # windows start at different rows
    assert out.min() >= 0.0 and out[0::2].max() <= height - 1 + 1e-3  # inside the image


def test_zoom_view_windows_sit_at_the_midpoint_quantiles_of_the_windows_zoom_shows() -> None:
    height, width = 16, 8
    rows = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None, None], (512, height, width, 3))
    out = zoom(tf.constant(rows), tf.constant([5, 6], tf.int64), max_zoom=1.5).numpy()
    windows = out[:, 1, 0, 0] - out[:, 0, 0, 0]  # the source step per output row is the window side
    sides = zoom_view_windows(1.5, 3)
    assert sides == (0.92, 0.8, 0.71)  # widest first
    for k, side in enumerate(sides):  # a share (k + 1/2)/3 of training views is wider
        assert abs(np.mean(windows > side) - (k + 0.5) / 3) < 0.06
    assert zoom_view_windows(1.25, 1) == (0.89,) and zoom_view_windows(1.25, 2) == (0.94, 0.84)
    assert zoom_view_windows(1.0, 4) == (1.0,)  # no zoom: one whole view
    with pytest.raises(ValueError, match="at least 1"):
        zoom_view_windows(0.9, 1)
    with pytest.raises(ValueError, match="views"):
        zoom_view_windows(1.25, 0)


def test_augment_zooms_only_when_max_zoom_exceeds_one() -> None:
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (4, 64, 32, 3)), tf.uint8)
    plain = augment(images, tf.constant([7, 8])).numpy()
    zoomed = augment(images, tf.constant([7, 8]), max_zoom=1.25).numpy()
    assert plain.shape == zoomed.shape and not np.array_equal(plain, zoomed)
    np.testing.assert_array_equal(plain, augment(images, tf.constant([7, 8]), max_zoom=1.0).numpy())


def test_sources_keep_their_persons_apart_and_batches_mix_them(tmp_path: Path) -> None:
    first = write_training_tree(tmp_path / "first", persons=6)
    second = write_training_tree(tmp_path / "second", persons=6)  # the same folder names: other persons
    data = load_training_set([first, second], (32, 16), progress=False)
    assert data.num_classes == 12 and len(data.items) == len(data.labels) == 54
    assert {person.split("/")[0] for person in data.persons} == {"0-first", "1-second"}
    source_of_label = np.array([person.startswith("1-") for person in data.persons])
    batches = PKSampler(data.labels, persons=8, per_person=2, seed=0).epoch_batches(0)
    sources = source_of_label[data.labels[batches]]
    assert sources.any() and not sources.all()  # both sources appear in the epoch's batches
    with pytest.raises(ValueError, match="given twice"):
        load_training_set([first, first], (32, 16), progress=False)


def test_colour_jitter_keeps_range_greys_and_shuffles_channels() -> None:
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (64, 8, 4, 3)), tf.float32)
    jittered = jitter_colour(images, tf.constant([3, 4], tf.int64), 1.0).numpy()
    assert jittered.min() >= 0.0 and jittered.max() <= 255.0
    np.testing.assert_array_equal(jittered, jitter_colour(images, tf.constant([3, 4], tf.int64), 1.0).numpy())
    grey = np.all(jittered[..., :1] == jittered, axis=(1, 2, 3))
    assert 0 < grey.sum() < 64 * 0.3  # about GREY_PROBABILITY of the images turn grey
    changed = np.abs(jittered - images.numpy()).mean(axis=(1, 2, 3)) > 1.0
    assert changed.mean() > 0.9
    untouched = jitter_colour(images, tf.constant([3, 4], tf.int64), 0.0).numpy()
    same = np.all(np.abs(untouched - images.numpy()) < 1e-3, axis=(1, 2, 3))
    assert same.mean() > 0.7  # without jitter only the grey and shuffled images change


def test_augment_jitters_colour_only_when_asked() -> None:
    images = tf.constant(np.full((4, 16, 8, 3), 100.0), tf.float32)
    plain = augment(images, tf.constant([1, 2]), colour=0.0).numpy()
    coloured = augment(images, tf.constant([1, 2]), colour=1.0).numpy()
    assert not np.array_equal(plain, coloured)
