"""The re-ID training network: backbone, pooling, BN neck and an identity classifier.

Following Luo et al. ("Bag of Tricks", 2019): the pooled 1280-d feature feeds the triplet
loss; a BatchNorm with a fixed zero shift (the BN neck) turns it into the embedding, which
feeds a bias-free identity classifier in training and is the inference output (the Embedder
L2-normalizes it). No projection layer: the pooled width (1280) is the embedding size, so
nothing untrained sits between the ImageNet features and the metric space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from embedder.backbone.mobilenet_v2 import (
    BLOCK_NAMES,
    block_layers,
    build_mobilenet_v2,
    copy_weights_by_name,
)
from embedder.training.losses import CosineClassifier

RECIPES = ("triplet-bnneck", "dcl")


class ReidNet(keras.Model):
    """Map (B, H, W, 3) RGB 0..255 images to features, embeddings and identity logits.

    ``recipe`` "triplet-bnneck" scores identities with a bias-free linear classifier; "dcl"
    with a cosine classifier of scale ``scale`` and keeps (C, D) class centers for the
    center loss. ``distill_dims`` adds a bias-free linear ``distill`` layer that maps the unit
    embedding towards a teacher's ``distill_dims``-d vectors (see ``distillation``).
    """

    def __init__(self, backbone: keras.Model, num_classes: int, *, recipe: str = "triplet-bnneck",
                 scale: float = 16.0, distill_dims: int | None = None, **kwargs: object) -> None:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}: give one of {', '.join(RECIPES)}")
        super().__init__(**kwargs)
        self.backbone = backbone
        self.recipe = recipe
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
        self.neck = keras.layers.BatchNormalization(
            center=False, momentum=0.9, epsilon=1e-5, name="bnneck")
        if recipe == "dcl":
            self.classifier = CosineClassifier(num_classes, scale, name="classifier")
        else:
            self.classifier = keras.layers.Dense(
                num_classes, use_bias=False, name="classifier",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))
        dim = backbone.output_shape[-1]
        self.centers = (self.add_weight(name="centers", shape=(num_classes, dim), initializer="zeros",
                                        trainable=False)  # moved by a running mean, not by gradients
                        if recipe == "dcl" else None)
        self.distill = (keras.layers.Dense(distill_dims, use_bias=False, name="distill")
                        if distill_dims else None)
        self.build((None, *backbone.input_shape[1:]))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Build every layer for (B, H, W, 3) inputs."""
        feature_shape = self.pool.compute_output_shape(self.backbone.output_shape)
        self.neck.build(feature_shape)
        self.classifier.build(feature_shape)
        if self.distill is not None:
            self.distill.build(feature_shape)
        super().build(input_shape)

    def call(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Return ``feature`` (B, D) pre-neck, ``embedding`` (B, D) post-neck, ``logits`` (B, C)
        and, with a ``distill`` layer, ``distilled`` (B, distill_dims) unit rows."""
        feature = self.pool(self.backbone(images, training=training))
        embedding = self.neck(feature, training=training)
        outputs = {"feature": feature, "embedding": embedding, "logits": self.classifier(embedding)}
        if self.distill is not None:
            outputs["distilled"] = tf.math.l2_normalize(
                self.distill(tf.math.l2_normalize(embedding, axis=1)), axis=1)
        return outputs

    def head_variables(self) -> list[keras.Variable]:
        """Return the trainable variables outside the backbone (neck scale, classifier, distill)."""
        distill = self.distill.trainable_weights if self.distill is not None else []
        return [*self.neck.trainable_weights, *self.classifier.trainable_weights, *distill]

    def copy_trained_layers(self, source: ReidNet) -> None:
        """Take ``source``'s backbone, neck, classifier and centers (same recipe and persons).

        The backbone is copied layer by layer (``copy_weights_by_name``): an IBN one can start
        from one without.
        """
        copy_weights_by_name(self.backbone, source.backbone)
        for mine, theirs in ((self.neck, source.neck), (self.classifier, source.classifier)):
            mine.set_weights(theirs.get_weights())
        if self.centers is not None and source.centers is not None:
            self.centers.assign(source.centers)

    def copy_exported_layers(self, exported: keras.Model) -> None:
        """Take the backbone (layer by layer, as ``copy_trained_layers``) and BN neck of
        ``exported``, an ``inference_model`` of another run."""
        copy_weights_by_name(self.backbone, exported.get_layer(self.backbone.name))
        self.neck.set_weights(exported.get_layer(self.neck.name).get_weights())

    def inference_model(self) -> keras.Model:
        """Return a functional model sharing these layers: (N, H, W, 3) RGB 0..255 -> (N, D) embedding.

        With a ``distill`` layer the output is the head's (N, distill_dims) map of the
        embedding: linear, so its direction is that of the unit embedding's map.
        """
        inputs = keras.Input(shape=self.backbone.input_shape[1:], name="image")
        embedding = self.neck(self.pool(self.backbone(inputs)))
        if self.distill is not None:
            embedding = self.distill(embedding)
        return keras.Model(inputs, embedding, name="reid_embedder")


def build_reid_net(num_classes: int, input_size: tuple[int, int], *, recipe: str = "triplet-bnneck",
                   scale: float = 16.0, pretrained: bool = True, distill_dims: int | None = None,
                   ibn: bool = False,
                   backbone_builder: Callable[..., keras.Model] = build_mobilenet_v2) -> ReidNet:
    """Build a ``ReidNet`` on a MobileNetV2 for ``input_size`` (height, width) images, with
    instance-batch norm in its early blocks if ``ibn`` (see ``build_mobilenet_v2``)."""
    backbone = backbone_builder((*input_size, 3), weights=pretrained, include_top=False, ibn=ibn)
    return ReidNet(backbone, num_classes, recipe=recipe, scale=scale, distill_dims=distill_dims,
                   name="reid_net")


def set_backbone_trainable(backbone: keras.Model, frozen_blocks: int | Sequence[str]) -> None:
    """Freeze the first ``frozen_blocks`` of ``BLOCK_NAMES`` (or the named blocks); train the rest.

    Frozen BatchNorm layers run in inference mode (Keras 3), keeping their ImageNet statistics;
    a frozen ``InstanceBatchNorm`` is frozen whole: its batch part likewise, its instance part
    still normalising each image by its own statistics, with a fixed scale and shift.
    """
    frozen = set(BLOCK_NAMES[:frozen_blocks] if isinstance(frozen_blocks, int) else frozen_blocks)
    backbone.trainable = True
    for block in BLOCK_NAMES:
        for layer in block_layers(backbone, block):
            layer.trainable = block not in frozen
