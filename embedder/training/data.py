"""Training data: images decoded once into memory, P x K identity-balanced batches, augmentation.

Every random choice is a pure function of (seed, epoch, step): the sampler draws each epoch's
batches from ``numpy.random.default_rng((seed, epoch))`` and the augmentation uses stateless
TensorFlow ops seeded with (seed, epoch, step). Resuming at (epoch, step) therefore replays
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray
from tqdm import tqdm

from base.images import read_image
from embedder.datasets import LabelledImage, list_sources
from embedder.preprocess import to_model_input

log = logging.getLogger(__name__)

PAD = 10
ERASE_PROBABILITY = 0.5
ERASE_AREA = (0.02, 0.4)
ERASE_MIN_ASPECT = 0.3
ERASE_FILL = (0.4914 * 255.0, 0.4822 * 255.0, 0.4465 * 255.0)  # torchreid's mean, RGB 0..255
ERASE_ATTEMPTS = 10
COLOUR_STRENGTH = 0.3
GREY_PROBABILITY = 0.1
SHUFFLE_PROBABILITY = 0.1
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma of RGB
CHANNEL_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@dataclass(frozen=True)
class TrainingSet:
    """Images of one or more folder-per-person trees, resized and held in memory.

    ``images`` is (N, H, W, 3) uint8 RGB, ``labels`` (N,) int32 in 0..P-1,
    ``persons[label]`` the (source-qualified, see ``list_sources``) name of each label and
    ``items`` the files the images came from, in the same order.
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int32]
    persons: tuple[str, ...]
    items: tuple[LabelledImage, ...] = ()

    @property
    def num_classes(self) -> int:
        """Return the number of persons P."""
        return len(self.persons)


def load_training_set(roots: Sequence[Path], input_size: tuple[int, int], *, chunk: int = 256,
                      progress: bool = True) -> TrainingSet:
    """Decode every image under each ``root/<person>/`` and resize it to ``input_size`` (height, width).

    Persons of different roots are different persons (``list_sources``).

    Raises:
        FileNotFoundError: a root is not a directory.
        ValueError: a root holds no images, or all of them fewer than two persons.
        ImageError: an image cannot be decoded.
    """
    items = list_sources(roots)
    if len({item.person for item in items}) < 2:
        raise ValueError(f"{', '.join(map(str, roots))} hold fewer than 2 person folders; training needs at least 2")
    data = load_images(items, input_size, chunk=chunk, progress=progress)
    log.info("loaded %d images of %d persons from %s at %dx%d", len(items), data.num_classes,
             ", ".join(map(str, roots)), *input_size)
    return data


def load_images(items: Sequence[LabelledImage], input_size: tuple[int, int], *, chunk: int = 256,
                progress: bool = True) -> TrainingSet:
    """Decode ``items``' images, resize them to ``input_size`` and label their persons 0..P-1 (sorted).

    Raises:
        ImageError: an image cannot be decoded.
    """
    persons = tuple(sorted({item.person for item in items}))
    index = {person: label for label, person in enumerate(persons)}
    images = np.empty((len(items), *input_size, 3), dtype=np.uint8)
    for start in tqdm(range(0, len(items), chunk), desc="decoding", unit="chunk", disable=not progress):
        batch = [read_image(item.path) for item in items[start:start + chunk]]
        images[start:start + len(batch)] = to_model_input(batch, input_size).astype(np.uint8)
    labels = np.array([index[item.person] for item in items], dtype=np.int32)
    return TrainingSet(images=images, labels=labels, persons=persons, items=tuple(items))


class PKSampler:
    """Draw batches of ``persons`` identities times ``per_person`` images each (torchreid's scheme).

    Each epoch, every person's images are shuffled and cut into groups of ``per_person``
    (a person with fewer is padded by drawing with replacement; an incomplete last group is
    dropped); batches then take one group from each of ``persons`` randomly chosen persons
    that still have groups, until fewer than ``persons`` such persons remain.
    """

    def __init__(self, labels: NDArray[np.integer], persons: int, per_person: int, seed: int) -> None:
        """Index ``labels`` (N,) by person.

        Raises:
            ValueError: fewer than ``persons`` distinct labels, or non-positive sizes.
        """
        if persons < 2 or per_person < 2:
            raise ValueError(f"need at least 2 persons x 2 images per batch, got {persons} x {per_person}")
        labels = np.asarray(labels)
        self._members = [np.flatnonzero(labels == label) for label in np.unique(labels)]
        if len(self._members) < persons:
            raise ValueError(f"a batch of {persons} persons needs as many persons in the data, "
                             f"found {len(self._members)}")
        self.persons = persons
        self.per_person = per_person
        self.seed = seed

    @property
    def batch_size(self) -> int:
        """Return P x K."""
        return self.persons * self.per_person

    def epoch_batches(self, epoch: int) -> NDArray[np.int64]:
        """Return the (steps, P*K) image indices of ``epoch``'s batches; person-major within a batch."""
        rng = np.random.default_rng((self.seed, epoch))
        groups: list[list[NDArray[np.int64]]] = []
        for members in self._members:
            if len(members) < self.per_person:
                members = rng.choice(members, self.per_person, replace=True)
            members = rng.permutation(members)
            usable = len(members) - len(members) % self.per_person
            groups.append(list(members[:usable].reshape(-1, self.per_person)))
        available = [person for person, person_groups in enumerate(groups) if person_groups]
        batches = []
        while len(available) >= self.persons:
            chosen = rng.choice(len(available), self.persons, replace=False)
            batch = [groups[available[i]].pop() for i in chosen]
            batches.append(np.concatenate(batch))
            available = [person for person in available if groups[person]]
        return np.stack(batches).astype(np.int64)

    def steps_per_epoch(self, epoch: int) -> int:
        """Return the number of batches in ``epoch``."""
        return len(self.epoch_batches(epoch))


def augment(images: tf.Tensor, seed: tf.Tensor, max_zoom: float = 1.0, colour: float = 0.0) -> tf.Tensor:
    """Flip, zoom, pad-and-crop and randomly erase a batch, as Luo et al.; deterministic in ``seed``.

    Args:
        images: (B, H, W, 3) uint8 or float RGB in 0..255, H and W known statically.
        seed: (2,) int32/int64 stateless seed.
        max_zoom: scale jitter (see ``zoom``); 1 leaves the scale alone.
        colour: the probability of each image's colour jitter (see ``jitter_colour``); 0 skips it.

    Returns:
        (B, H, W, 3) float32 RGB in 0..255.
    """
    images = tf.cast(images, tf.float32)
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    seed = tf.cast(seed, tf.int64)
    flip_seed, row_seed, col_seed, erase_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))

    flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if max_zoom > 1.0:
        images = zoom(images, tf.random.experimental.stateless_fold_in(seed, 4), max_zoom)
    if colour > 0.0:
        images = jitter_colour(images, tf.random.experimental.stateless_fold_in(seed, 5), colour)

    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    top = tf.random.stateless_uniform([batch], row_seed, 0, 2 * PAD + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], col_seed, 0, 2 * PAD + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]
    cols = left[:, None] + tf.range(width)[None, :]
    images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)

    return random_erase(images, erase_seed)


def zoom(images: tf.Tensor, seed: tf.Tensor, max_zoom: float) -> tf.Tensor:
    """Magnify each image by its own factors in [1, ``max_zoom``], one per axis, at a random place.

    Scale jitter for the misaligned boxes of a person detector: the output shows a random
    window 1/zoom of the height and of the width, resized back (bilinear) to the full size.

    Args:
        images: (B, H, W, 3) float32, H and W known statically.
        seed: (2,) int64 stateless seed.
        max_zoom: the largest magnification, >= 1.
    """
    batch = tf.shape(images)[0]
    zoom_seed, place_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    extent = 1.0 / tf.random.stateless_uniform([batch, 2], zoom_seed, 1.0, max_zoom)
    start = tf.random.stateless_uniform([batch, 2], place_seed) * (1.0 - extent)
    boxes = tf.concat([start, start + extent], axis=1)  # (y1, x1, y2, x2) as fractions of the image
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), images.shape[1:3])


def jitter_colour(images: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """Change each image's colours as another camera might, with ``probability``.

    A jittered image has its brightness, contrast and saturation each scaled by U(1 - s, 1 + s)
    (s = ``COLOUR_STRENGTH``); then, independently of the jitter, it turns grey with
    ``GREY_PROBABILITY`` and has its channels shuffled with ``SHUFFLE_PROBABILITY``.

    Args:
        images: (B, H, W, 3) float32 RGB in 0..255.
        seed: (2,) int64 stateless seed.
        probability: the chance that an image is jittered.

    Returns:
        (B, H, W, 3) float32 RGB in 0..255.
    """
    batch = tf.shape(images)[0]
    gate_seed, factor_seed, grey_seed, shuffle_seed, order_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 5))
    jittered = tf.random.stateless_uniform([batch], gate_seed) < probability
    factors = tf.random.stateless_uniform([batch, 3], factor_seed, 1.0 - COLOUR_STRENGTH, 1.0 + COLOUR_STRENGTH)
    factors = tf.where(jittered[:, None], factors, tf.ones_like(factors))
    brightness, contrast, saturation = (factors[:, i, None, None, None] for i in range(3))
    images = images * brightness
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * contrast + mean
    grey = tf.reduce_sum(images * GREY_WEIGHTS, axis=3, keepdims=True)
    images = grey + (images - grey) * saturation
    to_grey = tf.random.stateless_uniform([batch], grey_seed) < GREY_PROBABILITY
    images = tf.where(to_grey[:, None, None, None], tf.repeat(grey, 3, axis=3), images)
    orders = tf.constant(CHANNEL_ORDERS, tf.int32)
    order = tf.gather(orders, tf.random.stateless_uniform([batch], order_seed, 0, len(CHANNEL_ORDERS),
                                                          dtype=tf.int32))
    shuffle = tf.random.stateless_uniform([batch], shuffle_seed) < SHUFFLE_PROBABILITY
    order = tf.where(shuffle[:, None], order, tf.range(3)[None, :])
    images = tf.gather(images, order, axis=3, batch_dims=1)
    return tf.clip_by_value(images, 0.0, 255.0)


def zoom_view_windows(max_zoom: float, views: int) -> tuple[float, ...]:
    """Return the centre-crop sides of up to ``views`` test views that stand for the training zoom.

    View k keeps 1/z of each side for z at the (k + 1/2)/views quantile of U(1, max_zoom), the
    zoom that ``zoom`` draws, rounded to 2 decimals, widest first; equal sides merge (no zoom: one
    whole view). One view shows the median training view (0.89 at 1.25); two show 0.94 and 0.84.

    Raises:
        ValueError: ``max_zoom`` is below 1 or ``views`` below 1.
    """
    if max_zoom < 1.0:
        raise ValueError(f"max_zoom must be at least 1, got {max_zoom}")
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    return tuple(dict.fromkeys(round(1.0 / (1.0 + (max_zoom - 1.0) * (k + 0.5) / views), 2)
                               for k in range(views)))


def random_erase(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Fill one random rectangle per image with torchreid's mean colour, with probability 0.5.

    As torchreid's ``RandomErasing``: area fraction U(0.02, 0.4), aspect U(0.3, 1/0.3); the
    first of ``ERASE_ATTEMPTS`` draws that fits strictly inside the image is used (torchreid
    tries 100; at 256x128 over 99% of images find a fit within 10).

    Args:
        images: (B, H, W, 3) float32 RGB in 0..255.
        seed: (2,) int64 stateless seed.
    """
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    gate_seed, area_seed, aspect_seed, top_seed, left_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 5))
    shape = [batch, ERASE_ATTEMPTS]
    area = tf.cast(height * width, tf.float32) * tf.random.stateless_uniform(
        shape, area_seed, *ERASE_AREA)
    aspect = tf.random.stateless_uniform(shape, aspect_seed, ERASE_MIN_ASPECT, 1.0 / ERASE_MIN_ASPECT)
    box_height = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    box_width = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    fits = (box_height < height) & (box_width < width)
    attempt = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)  # first fit
    box_height = tf.gather(box_height, attempt, batch_dims=1)
    box_width = tf.gather(box_width, attempt, batch_dims=1)
    erase = ((tf.random.stateless_uniform([batch], gate_seed) < ERASE_PROBABILITY)
             & tf.reduce_any(fits, axis=1))
    top = tf.cast(tf.floor(tf.random.stateless_uniform([batch], top_seed)
                           * tf.cast(height - box_height + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(tf.random.stateless_uniform([batch], left_seed)
                            * tf.cast(width - box_width + 1, tf.float32)), tf.int32)
    row = tf.range(height)[None, :]
    col = tf.range(width)[None, :]
    in_rows = (row >= top[:, None]) & (row < (top + box_height)[:, None])
    in_cols = (col >= left[:, None]) & (col < (left + box_width)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]
    fill = tf.constant(ERASE_FILL, tf.float32)
    return tf.where(mask[..., None], fill, images)


def epoch_dataset(data: TrainingSet, sampler: PKSampler, epoch: int, start_step: int = 0,
                  *, augmented: bool = True, max_zoom: float = 1.0, colour: float = 0.0) -> tf.data.Dataset:
    """Return ``epoch``'s batches from ``start_step`` on as a prefetching dataset.

    ``augmented`` batches go through ``augment`` with ``max_zoom`` and ``colour``.

    Each element is (step () int64, images (P*K, H, W, 3) float32 RGB 0..255, labels (P*K,)
    int32, indices (P*K,) int64 of the images in ``data``).
    """
    batches = sampler.epoch_batches(epoch)
    height, width = data.images.shape[1:3]

    def generate() -> Iterator[tuple[int, NDArray[np.uint8], NDArray[np.int32], NDArray[np.int64]]]:
        for step in range(start_step, len(batches)):
            indices = batches[step]
            yield step, data.images[indices], data.labels[indices], indices

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((), tf.int64),
        tf.TensorSpec((sampler.batch_size, height, width, 3), tf.uint8),
        tf.TensorSpec((sampler.batch_size,), tf.int32),
        tf.TensorSpec((sampler.batch_size,), tf.int64)))

    def transform(step: tf.Tensor, images: tf.Tensor, labels: tf.Tensor, indices: tf.Tensor
                  ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        seed = tf.stack([tf.constant(sampler.seed, tf.int64), tf.constant(epoch, tf.int64) * 1_000_000 + step])
        pixels = augment(images, seed, max_zoom, colour) if augmented else tf.cast(images, tf.float32)
        return step, pixels, labels, indices

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.deterministic = True
    return dataset.map(transform).prefetch(1).with_options(options)
