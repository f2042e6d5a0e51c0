"""Unsupervised adaptation of a trained model to the operator's cameras (``reid adapt``).

Two steps on the exported inference model, no labels needed:

1. Batch-norm statistics are re-estimated on the footage crops (AdaBN, Li et al. 2016): the
   network then normalises its features as the operator's cameras make them.
2. The network is fine-tuned briefly with batch-normalisation frozen: each batch holds P/2
   pseudo-identities from the footage (``footage.pseudo_identities``) and, when source data is
   given, P/2 labelled source persons, K images each. The loss is a batch-hard triplet loss on
   the unit embeddings plus ``anchor_weight`` times the cosine distance between each source
   (else footage) image's embedding and that of the network as step 1 left it, so fine-tuning
   does not wander from what the network knew.

The result is a new model directory with a new model id (the service re-embeds its gallery
with it on first use) and the original's threshold, marked as inherited.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from embedder.backbone.mobilenet_v2 import BLOCK_NAMES, block_layers
from embedder.datasets import LabelledImage
from embedder.metadata import ModelMetadata
from embedder.reid_model import MODEL_FILE
from embedder.training.config import AdaptConfig
from embedder.training.data import PKSampler, TrainingSet, augment, load_images, load_training_set
from embedder.training.export import export, weights_digest
from embedder.training.losses import batch_hard_triplet_loss, distillation_loss

log = logging.getLogger(__name__)


def adapt_model(model_dir: Path, out_dir: Path, footage: Sequence[LabelledImage],
                source_dirs: Sequence[Path] = (), config: AdaptConfig = AdaptConfig(), *,
                progress: bool = True) -> ModelMetadata:
    """Adapt the model in ``model_dir`` to the ``footage`` crops (labelled by pseudo-identity).

    Raises:
        ValueError: fewer than two pseudo-identities, or bad settings.
        IntegrityError: the model file is not the one its metadata records.
        ImageError: a crop cannot be read.
    """
    metadata = ModelMetadata.load(Path(model_dir))
    model = keras.saving.load_model(metadata.verified(Path(model_dir), MODEL_FILE), compile=False)
    anchor_model = keras.saving.load_model(Path(model_dir) / MODEL_FILE, compile=False)
    size = metadata.input_size
    target = load_images(footage, size, progress=progress)
    if target.num_classes < 2:
        raise ValueError(f"adaptation needs at least 2 pseudo-identities in the footage, found {target.num_classes}")
    source = load_training_set(source_dirs, size, progress=progress) if source_dirs else None
    half = max(2, config.persons // 2)
    target_sampler = PKSampler(target.labels, min(half, target.num_classes), config.per_person, config.seed)
    source_sampler = (PKSampler(source.labels, half, config.per_person, config.seed)
                      if source is not None else None)

    reestimate_batch_norm(model, target, target_sampler, config.bn_batches)
    anchor_model.set_weights(model.get_weights())  # the anchor sees as the adapted statistics do
    trainable = trainable_variables(model, config.frozen_blocks)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    optimizer.build(trainable)

    @tf.function
    def step(images: tf.Tensor, labels: tf.Tensor, anchors: tf.Tensor, anchor_images: tf.Tensor
             ) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            unit = tf.math.l2_normalize(model(images, training=False), axis=1)
            anchored = tf.math.l2_normalize(model(anchor_images, training=False), axis=1)
            losses = {"triplet": batch_hard_triplet_loss(unit, labels),
                      "anchor": config.anchor_weight * distillation_loss(anchored, anchors)}
            total = losses["triplet"] + losses["anchor"]
        optimizer.apply(tape.gradient(total, trainable), trainable)
        return {**losses, "total": total}

    batches = paired_batches(target, target_sampler, source, source_sampler, config.steps)
    with tqdm(total=config.steps, desc="adapting", unit="step", file=sys.stderr, disable=not progress) as bar:
        for number, (images, labels, anchor_images) in enumerate(batches):
            seed = tf.constant([config.seed, number], tf.int64)
            pixels = augment(images, seed, colour=0.5)
            anchors = tf.math.l2_normalize(anchor_model(anchor_images, training=False), axis=1)
            losses = step(pixels, tf.constant(labels), anchors, tf.constant(anchor_images, tf.float32))
            bar.update(1)
            bar.set_postfix({name: f"{float(value):.3f}" for name, value in losses.items()}, refresh=False)

    adapted = replace(
        metadata,
        model_id=f"{metadata.model_id.rsplit('-', 1)[0]}-adapted-{weights_digest(model)}",
        recipe={**metadata.recipe, "adaptation": {
            **asdict(config), "from_model": metadata.model_id, "footage_crops": len(target.labels),
            "pseudo_identities": target.num_classes,
            "source_data": [str(path) for path in source_dirs]}},
        validation={"threshold_inherited_from": metadata.model_id} if metadata.threshold is not None else {},
        sha256={})
    export(model, Path(out_dir), adapted)
    log.info("adapted %s into %s on %d crops of %d pseudo-identities", metadata.model_id, adapted.model_id,
             len(target.labels), target.num_classes)
    return ModelMetadata.load(Path(out_dir))


def reestimate_batch_norm(model: keras.Model, data: TrainingSet, sampler: PKSampler, batches: int) -> None:
    """Replace every BN layer's moving statistics by those of ``batches`` batches of ``data``."""
    norms = [layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.9
    indices = np.concatenate([sampler.epoch_batches(epoch) for epoch in range(batches)])[:batches]
    for batch in indices:
        model(tf.constant(data.images[batch], tf.float32), training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum


def iter_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Return every layer of ``model``, nested models' layers included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(iter_layers(layer))
    return found


def trainable_variables(model: keras.Model, frozen_blocks: int) -> list[keras.Variable]:
    """Return the weights fine-tuning changes: all but BN statistics and the first ``frozen_blocks`` blocks."""
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    frozen = {id(variable) for block in BLOCK_NAMES[:frozen_blocks]
              for layer in block_layers(backbone, block) for variable in layer.weights}
    return [variable for variable in model.trainable_variables if id(variable) not in frozen]


def paired_batches(target: TrainingSet, target_sampler: PKSampler, source: TrainingSet | None,
                   source_sampler: PKSampler | None, steps: int
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``steps`` (images, labels, anchor images): footage batches joined to source batches.

    Source labels are offset past the footage's, so the two never share a label; the anchor
    images are the source half (the footage half without source data).
    """
    epoch = 0
    made = 0
    while made < steps:
        target_batches = target_sampler.epoch_batches(epoch)
        source_batches = source_sampler.epoch_batches(epoch) if source_sampler is not None else None
        for number, batch in enumerate(target_batches):
            if made == steps:
                return
            images = target.images[batch]
            labels = target.labels[batch]
            anchor_images = images
            if source is not None and source_batches is not None:
                other = source_batches[number % len(source_batches)]
                anchor_images = source.images[other]
                images = np.concatenate([images, anchor_images])
                labels = np.concatenate([labels, source.labels[other] + target.num_classes])
            yield images, labels.astype(np.int32), anchor_images.astype(np.float32)
            made += 1
        epoch += 1
