"""Exported models reload to identical outputs in each saved format; checkpoints round-trip."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from base.integrity import IntegrityError, file_sha256
from embedder.base import l2_normalize
from embedder.metadata import ModelMetadata
from embedder.preprocess import to_model_input
from embedder.registry import build_embedder
from embedder.reid_model import KerasEmbedder, ReidEmbedder
from embedder.runtime_model import RuntimeEmbedder
from embedder.training.checkpoint import (
    LoopState,
    load_checkpoint,
    save_checkpoint,
)
from embedder.training.export import export, export_keras_json_h5
from embedder.training.model import build_reid_net

SIZE = (64, 32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, Path]:
    """Return a random-weight inference model and the directory it was exported to."""
    keras.utils.set_random_seed(0)
    net = build_reid_net(5, SIZE, pretrained=False)
    # Move the BN statistics off their defaults so that a reload that dropped them would show.
    net(np.random.default_rng(1).uniform(0, 255, (8, *SIZE, 3)).astype(np.float32), training=True)
    model = net.inference_model()
    metadata = ModelMetadata(model_id="test-reid", input_size=SIZE, embedding_dim=1280)
    return model, export(model, tmp_path_factory.mktemp("export") / "model", metadata)


def batch() -> np.ndarray:
    return np.random.default_rng(2).uniform(0, 255, (3, *SIZE, 3)).astype(np.float32)


@pytest.mark.slow  # each export converts to OpenVINO
def test_keras_file_reloads_to_identical_outputs(exported: tuple[keras.Model, Path]) -> None:
    model, out_dir = exported
    reloaded = keras.saving.load_model(out_dir / "model.keras", compile=False)
    np.testing.assert_array_equal(model.predict(batch(), verbose=0), reloaded.predict(batch(), verbose=0))


@pytest.mark.slow  # each export converts to OpenVINO
def test_the_export_holds_only_what_the_service_loads_with_its_digest(exported: tuple[keras.Model, Path]) -> None:
    _, out_dir = exported
    files = ["metadata.json", "model.bin", "model.keras", "model.xml"]
    assert sorted(path.name for path in out_dir.iterdir()) == files
    metadata = ModelMetadata.load(out_dir)
    assert metadata.sha256 == {name: file_sha256(out_dir / name) for name in files[1:]}


@pytest.mark.slow  # each export converts to OpenVINO
def test_the_service_embeds_with_the_openvino_ir_as_keras_does(exported: tuple[keras.Model, Path]) -> None:
    _, out_dir = exported
    images = [np.random.default_rng(i).integers(0, 256, (100, 40, 3), dtype=np.uint8) for i in range(5)]
    runtime = build_embedder(str(out_dir), precision="f32")
    assert isinstance(runtime, RuntimeEmbedder) and runtime.model_id == "test-reid"
    np.testing.assert_allclose(runtime.embed(images), ReidEmbedder(out_dir).embed(images), atol=1e-5)


@pytest.mark.slow  # each export converts to OpenVINO
def test_without_the_ir_the_service_falls_back_to_tensorflow_and_says_so(
        exported: tuple[keras.Model, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, out_dir = exported
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)
    (copy / "model.xml").unlink()
    (copy / "model.bin").unlink()
    assert isinstance(build_embedder(str(copy)), ReidEmbedder)
    assert "no OpenVINO IR" in caplog.text


@pytest.mark.slow  # each export converts to OpenVINO
def test_the_seeds_json_and_h5_form_is_made_on_demand_and_round_trips(
        exported: tuple[keras.Model, Path], tmp_path: Path) -> None:
    model, out_dir = exported
    seed_form = export_keras_json_h5(out_dir, tmp_path / "seed")
    reloaded = keras.models.model_from_json((seed_form / "model.json").read_text())
    reloaded.load_weights(seed_form / "model.h5")
    np.testing.assert_array_equal(model.predict(batch(), verbose=0), reloaded.predict(batch(), verbose=0))
    metadata = ModelMetadata.load(seed_form)
    assert metadata.model_id == "test-reid" and sorted(metadata.sha256) == ["model.h5", "model.json"]


@pytest.mark.slow  # each export converts to OpenVINO
def test_a_damaged_model_file_is_refused_before_it_loads(exported: tuple[keras.Model, Path], tmp_path: Path) -> None:
    _, out_dir = exported
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)
    data = bytearray((copy / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    (copy / "model.keras").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="damaged or was replaced"):
        ReidEmbedder(copy).load()


@pytest.mark.slow  # each export converts to OpenVINO
def test_reid_embedder_loads_the_directory(exported: tuple[keras.Model, Path]) -> None:
    model, out_dir = exported
    images = [np.random.default_rng(i).integers(0, 256, (100, 40, 3), dtype=np.uint8) for i in range(5)]
    from_disk = ReidEmbedder(out_dir, batch_size=2)
    assert (from_disk.model_id, from_disk.dim, from_disk.input_size) == ("test-reid", 1280, SIZE)
    vectors = from_disk.embed(images)
    assert vectors.shape == (5, 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    in_memory = KerasEmbedder(model, from_disk.metadata, batch_size=5).embed(images)
    np.testing.assert_allclose(vectors, in_memory, atol=1e-6)


def test_flip_average_sums_an_image_and_its_mirror() -> None:
    keras.utils.set_random_seed(0)
    size = (8, 4)
    model = keras.Sequential([keras.Input((*size, 3)), keras.layers.Flatten(), keras.layers.Dense(6)])
    image = np.random.default_rng(3).integers(0, 256, (*size, 3), dtype=np.uint8)
    mirror = np.ascontiguousarray(image[:, ::-1])
    metadata = ModelMetadata(model_id="flat", input_size=size, embedding_dim=6)
    flipped = KerasEmbedder(model, replace(metadata, flip_average=True), batch_size=2).embed([image, mirror])
    outputs = model.predict(to_model_input([image, mirror], size), verbose=0)
    np.testing.assert_allclose(flipped[0], l2_normalize(outputs.sum(axis=0, keepdims=True))[0], atol=1e-5)
    np.testing.assert_allclose(flipped[0], flipped[1], atol=1e-6)  # a mirror image is the same person
    plain = KerasEmbedder(model, metadata).embed([image, mirror])
    assert np.abs(plain[0] - plain[1]).max() > 0.1


def test_center_crop_embeds_the_central_part_of_each_image() -> None:
    keras.utils.set_random_seed(0)
    size = (8, 4)
    model = keras.Sequential([keras.Input((*size, 3)), keras.layers.Flatten(), keras.layers.Dense(6)])
    image = np.random.default_rng(4).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    metadata = ModelMetadata(model_id="flat", input_size=size, embedding_dim=6, center_crops=(0.8,))
    cropped = KerasEmbedder(model, metadata).embed([image])
    np.testing.assert_allclose(cropped, KerasEmbedder(model, replace(metadata, center_crops=(1.0,))).embed(
        [np.ascontiguousarray(image[2:18, 1:9])]), atol=1e-6)


def test_several_center_crops_sum_the_outputs_of_each_view() -> None:
    keras.utils.set_random_seed(0)
    size = (8, 4)
    model = keras.Sequential([keras.Input((*size, 3)), keras.layers.Flatten(), keras.layers.Dense(6)])
    image = np.random.default_rng(5).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    metadata = ModelMetadata(model_id="flat", input_size=size, embedding_dim=6, center_crops=(1.0, 0.8))
    views = [image, np.ascontiguousarray(image[2:18, 1:9])]
    outputs = model.predict(to_model_input(views, size), verbose=0)
    np.testing.assert_allclose(KerasEmbedder(model, metadata).embed([image])[0],
                               l2_normalize(outputs.sum(axis=0, keepdims=True))[0], atol=1e-5)


def test_reid_embedder_needs_a_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.keras"):
        ReidEmbedder(tmp_path)


def test_checkpoint_round_trips_weights_exactly(tmp_path: Path) -> None:
    def build() -> tuple[keras.Model, keras.optimizers.Optimizer]:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
        optimizer = keras.optimizers.Adam(0.1)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    keras.utils.set_random_seed(0)
    model, optimizer = build()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 4)), epochs=2, verbose=0)
    path = save_checkpoint(tmp_path / "c.npz", model, optimizer, LoopState(epoch=2, step=5))
    copy, copy_optimizer = build()
    state = load_checkpoint(path, copy, copy_optimizer)
    assert (state.epoch, state.step) == (2, 5)
    for a, b in zip(model.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(optimizer.variables, copy_optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
