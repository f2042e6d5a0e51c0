"""Instance-batch norm (IBN-a): the layer against brute force, the backbone, init-from, save and export."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from numpy.typing import NDArray

from embedder.backbone.ibn import InstanceBatchNorm
from embedder.backbone.mobilenet_v2 import BN_EPSILON, IBN_BLOCKS, build_mobilenet_v2
from embedder.metadata import ModelMetadata
from embedder.training.export import export
from embedder.training.model import ReidNet, build_reid_net, set_backbone_trainable
from embedder.training.train import RESUME_KEYS, Trainer, changed_resume_keys
from tests.embedder.training.test_train import tiny_config

SIZE = (64, 32)
IBN_LAYERS = {f"block_{index}_expand_bn" for index in IBN_BLOCKS}


def images(count: int = 4, seed: int = 2) -> NDArray[np.float32]:
    """Return ``count`` seeded (64, 32) RGB images in 0..255."""
    return np.random.default_rng(seed).uniform(0, 255, (count, *SIZE, 3)).astype(np.float32)


def ibn_layer(rng: np.random.Generator) -> tuple[InstanceBatchNorm, list[NDArray[np.float32]]]:
    """Return a built 3 + 3 channel layer with random weights, and them: instance gamma and beta,
    then the batch part's gamma, beta, moving mean and moving variance."""
    layer = InstanceBatchNorm(3, epsilon=BN_EPSILON, momentum=0.9)
    layer.build((None, None, None, 6))
    weights = [rng.uniform(0.5, 2.0, 6), rng.normal(0, 1, 6), rng.normal(0, 3, 6), rng.uniform(0.5, 4.0, 6)]
    layer.assign_batch_norm([weight.astype(np.float32) for weight in weights])
    layer.gamma.assign(rng.uniform(0.5, 2.0, 3).astype(np.float32))  # apart from the batch part's
    return layer, [np.asarray(weight.numpy()) for weight in
                   (layer.gamma, layer.beta, *layer.batch_norm.weights)]


def brute_force(x: NDArray[np.float32], weights: list[NDArray[np.float32]], *,
                batch_statistics: bool) -> NDArray[np.float64]:
    """Normalise channels 0-2 of (N, H, W, 6) ``x`` image by image, channels 3-5 by batch norm, in loops."""
    in_gamma, in_beta, gamma, beta, moving_mean, moving_variance = weights
    out = np.empty(x.shape)
    for c in range(6):
        for n in range(len(x)):
            plane = x[n, :, :, c].astype(np.float64)
            if c < 3:
                mean, variance = plane.mean(), ((plane - plane.mean()) ** 2).mean()
                out[n, :, :, c] = (plane - mean) / np.sqrt(variance + BN_EPSILON) * in_gamma[c] + in_beta[c]
                continue
            channel = x[..., c].astype(np.float64)
            mean, variance = ((channel.mean(), channel.var()) if batch_statistics
                              else (moving_mean[c - 3], moving_variance[c - 3]))
            out[n, :, :, c] = (plane - mean) / np.sqrt(variance + BN_EPSILON) * gamma[c - 3] + beta[c - 3]
    return out


def test_the_layer_normalises_the_first_half_per_image_and_the_rest_by_batch_norm() -> None:
    rng = np.random.default_rng(0)
    layer, weights = ibn_layer(rng)
    x = (rng.normal(0, 1, (4, 5, 3, 6)) * rng.uniform(1, 9, (4, 1, 1, 6))
         + rng.normal(0, 9, (4, 1, 1, 6))).astype(np.float32)
    inference = brute_force(x, weights, batch_statistics=False)
    np.testing.assert_allclose(layer(x, training=False), inference, rtol=1e-4, atol=1e-4)
    layer.trainable = False  # frozen: the instance part still per image, the batch part on moving statistics
    np.testing.assert_allclose(layer(x, training=True), inference, rtol=1e-4, atol=1e-4)
    layer.trainable = True
    np.testing.assert_allclose(layer(x, training=True), brute_force(x, weights, batch_statistics=True),
                               rtol=1e-4, atol=1e-4)
    assert not np.allclose(layer.batch_norm.moving_mean.numpy(), weights[4])  # moved by the training call


def test_the_layer_starts_from_a_batch_norm_and_refuses_other_shapes() -> None:
    layer, _ = ibn_layer(np.random.default_rng(1))
    bn = layer.batch_norm
    full = [np.arange(6, dtype=np.float32) + offset for offset in (1, 10, 20, 30)]
    layer.assign_batch_norm(full)
    np.testing.assert_array_equal(layer.gamma.numpy(), full[0][:3])
    np.testing.assert_array_equal(layer.beta.numpy(), full[1][:3])
    for variable, value in zip(bn.weights, full, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value[3:])
    with pytest.raises(ValueError, match=r"four \(6,\) arrays"):
        layer.assign_batch_norm([value[:4] for value in full])
    with pytest.raises(ValueError, match="more channels"):
        InstanceBatchNorm(4, epsilon=BN_EPSILON, momentum=0.9).build((None, 8, 4, 4))


def test_the_ibn_backbone_has_it_in_the_expansions_of_blocks_2_to_6_from_imagenet_batch_norm() -> None:
    plain = build_mobilenet_v2((*SIZE, 3))
    ibn = build_mobilenet_v2((*SIZE, 3), ibn=True)
    assert {layer.name for layer in ibn.layers if isinstance(layer, InstanceBatchNorm)} == IBN_LAYERS
    for name in IBN_LAYERS:
        layer, source = ibn.get_layer(name), plain.get_layer(name)
        channels = source.gamma.shape[0]
        assert layer.instance_channels == channels // 2
        half = layer.instance_channels
        np.testing.assert_array_equal(layer.gamma.numpy(), source.gamma.numpy()[:half])
        for mine, theirs in zip(layer.batch_norm.weights, source.weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy()[half:])
    assert len(ibn.weights) == len(plain.weights) + 2 * len(IBN_LAYERS)


def moved_net(ibn: bool, seed: int) -> ReidNet:
    """Return a random-weight 64x32 net whose batch-norm statistics have left their defaults."""
    keras.utils.set_random_seed(seed)
    net = build_reid_net(5, SIZE, pretrained=False, ibn=ibn)
    net(images(8, seed), training=True)
    return net


def assert_started_from(net: ReidNet, source: ReidNet) -> None:
    """Check that ``net``'s IBN backbone holds ``source``'s plain one, layer by layer."""
    for layer in net.backbone.layers:
        theirs = source.backbone.get_layer(layer.name)
        if isinstance(layer, InstanceBatchNorm):
            half = layer.instance_channels
            np.testing.assert_array_equal(layer.gamma.numpy(), theirs.gamma.numpy()[:half])
            np.testing.assert_array_equal(layer.beta.numpy(), theirs.beta.numpy()[:half])
            for mine, value in zip(layer.batch_norm.weights, theirs.weights, strict=True):
                np.testing.assert_array_equal(mine.numpy(), value.numpy()[half:])
        else:
            for mine, value in zip(layer.weights, theirs.weights, strict=True):
                np.testing.assert_array_equal(mine.numpy(), value.numpy())


@pytest.mark.slow  # builds three full-size networks
def test_an_ibn_net_starts_from_a_plain_one_exported_or_trained_but_not_the_reverse() -> None:
    plain = moved_net(ibn=False, seed=0)
    from_export = moved_net(ibn=True, seed=1)
    from_export.copy_exported_layers(plain.inference_model())
    assert_started_from(from_export, plain)
    np.testing.assert_array_equal(from_export.neck.moving_mean.numpy(), plain.neck.moving_mean.numpy())

    from_checkpoint = moved_net(ibn=True, seed=2)
    from_checkpoint.copy_trained_layers(plain)
    assert_started_from(from_checkpoint, plain)
    np.testing.assert_array_equal(from_checkpoint.classifier.kernel.numpy(), plain.classifier.kernel.numpy())

    with pytest.raises(ValueError, match="cannot copy InstanceBatchNorm weights into BatchNormalization"):
        plain.copy_trained_layers(from_checkpoint)


def test_a_frozen_ibn_block_is_frozen_whole() -> None:
    net = build_reid_net(5, SIZE, pretrained=False, ibn=True)
    set_backbone_trainable(net.backbone, 4)  # stem and blocks 1-3
    frozen, trained = net.backbone.get_layer("block_3_expand_bn"), net.backbone.get_layer("block_4_expand_bn")
    assert not frozen.trainable_weights and not frozen.batch_norm.trainable
    assert len(trained.trainable_weights) == 4 and trained.batch_norm.trainable


@pytest.mark.slow  # saves and reloads a full-size model
def test_the_keras_file_of_an_ibn_model_reloads_to_identical_outputs(tmp_path: Path) -> None:
    model = moved_net(ibn=True, seed=3).inference_model()
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert isinstance(reloaded.get_layer("mobilenet_v2").get_layer("block_2_expand_bn"), InstanceBatchNorm)
    np.testing.assert_array_equal(reloaded(images(), training=False), model(images(), training=False))


def test_a_checkpoint_without_ibn_resumes_only_without_it() -> None:
    assert "ibn" in RESUME_KEYS
    config = {key: None for key in RESUME_KEYS if key != "ibn"}
    assert changed_resume_keys(config, {**config, "ibn": True}) == {"ibn": False}
    assert changed_resume_keys(config, {**config, "ibn": False}) == {}


@pytest.mark.slow  # the export converts to OpenVINO
def test_an_exported_ibn_model_converts_to_openvino_with_kerass_outputs(tmp_path: Path) -> None:
    import openvino as ov

    model = moved_net(ibn=True, seed=4).inference_model()
    metadata = ModelMetadata(model_id="test-ibn", input_size=SIZE, embedding_dim=1280)
    out_dir = export(model, tmp_path / "model", metadata)  # refuses an IR off by 1e-3 on its own check
    compiled = ov.Core().compile_model(out_dir / "model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    batch = images(3, seed=7) * np.array([0.2, 0.6, 1.0], np.float32)[:, None, None, None]  # other contrasts
    expected = np.asarray(model(batch, training=False))
    actual = np.asarray(compiled(batch)[compiled.output(0)])
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.slow  # exports, converts to OpenVINO and runs the trainer
def test_init_from_an_exported_plain_model_or_an_ibn_checkpoint(tmp_path: Path, train_dir: Path) -> None:
    plain = moved_net(ibn=False, seed=5)
    metadata = ModelMetadata(model_id="test-plain", input_size=SIZE, embedding_dim=1280)
    exported = export(plain.inference_model(), tmp_path / "plain", metadata)
    first = Trainer(tiny_config(tmp_path / "first", data_dirs=(train_dir,), init_from=exported, ibn=True,
                                max_steps=0), None)
    first.start_network()
    assert_started_from(first.net, plain)
    np.testing.assert_array_equal(first.net.neck.moving_mean.numpy(), plain.neck.moving_mean.numpy())
    first.run()  # starts again, warms the head up on the frozen backbone, checkpoints
    assert_started_from(first.net, plain)
    assert first.metadata().recipe["ibn"] is True

    second = Trainer(tiny_config(tmp_path / "second", data_dirs=(train_dir,), init_from=first.checkpoint_path.parent,
                                 ibn=True, max_steps=0), None)
    second.start_network()
    for a, b in zip(first.net.weights, second.net.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
