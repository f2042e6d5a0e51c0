"""A tiny training run: interrupted and resumed, it ends where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from embedder.metadata import ModelMetadata
from embedder.reid_model import ReidEmbedder
from embedder.training.checkpoint import CHECKPOINT_FILE, HISTORY_FILE, read_state
from embedder.training.data import TrainingSet, load_training_set
from embedder.training.model import build_reid_net
from embedder.training.train import (
    TrainConfig,
    Trainer,
    changed_resume_keys,
    compute_losses,
    learning_rate_at,
    update_centers,
)
from tests.embedder.evaluation.fakes import write_split
from tests.embedder.training.fakes import write_training_tree


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> TrainingSet:
    root = write_training_tree(tmp_path_factory.mktemp("tiny") / "train")
    return load_training_set([root], (64, 32), progress=False)


def tiny_config(root: Path, **overrides: object) -> TrainConfig:
    """Return a 64x32, 3 x 2 batch, one-epoch (four steps) config writing under ``root``."""
    settings: dict = dict(
        data_dirs=(root / "unused",), checkpoint_dir=root / "run", out_dir=root / "model",
        input_size=(64, 32), persons_per_batch=3, images_per_person=2, epochs=1, head_steps=1,
        warmup_epochs=0.5, frozen_blocks=4, pretrained=False, progress=False,
        checkpoint_minutes=1e9, seed=5)
    settings.update(overrides)
    return TrainConfig(**settings)


def weights_of(trainer: Trainer) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in trainer.net.weights]


@pytest.mark.slow
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(
        tmp_path: Path, tiny_data: TrainingSet) -> None:
    query, _ = write_split(tmp_path / "val")
    whole = Trainer(tiny_config(tmp_path / "whole", val_sets=(query.parent,)), tiny_data)
    whole_state = whole.run()

    interrupted = Trainer(tiny_config(tmp_path / "parts", max_steps=2), tiny_data)
    stopped = interrupted.run()
    assert (stopped.epoch, stopped.step, stopped.global_step) == (0, 2, 2)
    assert read_state(tmp_path / "parts" / "run" / CHECKPOINT_FILE).step == 2

    resumed = Trainer(tiny_config(tmp_path / "parts"), tiny_data)  # a fresh process's view
    resumed_state = resumed.run()
    steps = whole.sampler.steps_per_epoch(0)
    assert steps > 2
    assert (resumed_state.epoch, resumed_state.step, resumed_state.global_step) == (1, 0, steps)
    assert (whole_state.epoch, whole_state.step, whole_state.global_step) == (1, 0, steps)
    for a, b in zip(weights_of(whole), weights_of(resumed), strict=True):
        np.testing.assert_array_equal(a, b)

    history = (tmp_path / "whole" / "run" / HISTORY_FILE).read_text().splitlines()
    assert len(history) == 1 and '"rank1"' in history[0]
    metadata = ModelMetadata.load(tmp_path / "whole" / "model")
    assert metadata.threshold is not None and "rank1" in metadata.validation
    assert metadata.flip_average and "-crop0.94+0.84-flip-" in metadata.model_id
    assert metadata.center_crops == (0.94, 0.84)  # two views standing for the default 1.25 zoom
    embedder = ReidEmbedder(tmp_path / "whole" / "model")
    assert embedder.model_id == metadata.model_id and embedder.dim == 1280


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path: Path, tiny_data: TrainingSet) -> None:
    Trainer(tiny_config(tmp_path, head_steps=0, max_steps=0), tiny_data).run()
    with pytest.raises(ValueError, match="persons_per_batch"):
        Trainer(tiny_config(tmp_path, persons_per_batch=2), tiny_data).run()


def test_a_checkpoint_older_than_scale_jitter_resumes_only_without_it(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, max_zoom=1.0).to_json()
    older = {key: value for key, value in config.items() if key != "max_zoom"}
    assert changed_resume_keys(older, config) == {}
    assert changed_resume_keys(older, {**config, "max_zoom": 1.25}) == {"max_zoom": 1.0}
    assert changed_resume_keys(config, {**config, "frozen_blocks": 0}) == {"frozen_blocks": 4}


def test_learning_rate_warms_up_holds_then_decays() -> None:
    config = TrainConfig(data_dirs=(Path("."),), epochs=10, warmup_epochs=2, learning_rate=1.0)
    assert learning_rate_at(config, 0, 0, 100) == pytest.approx(0.1)
    assert learning_rate_at(config, 1, 0, 100) == pytest.approx(0.55)
    assert learning_rate_at(config, 3, 0, 100) == pytest.approx(1.0)
    assert learning_rate_at(config, 5, 0, 100) == pytest.approx(1.0)
    assert learning_rate_at(config, 10, 0, 100) == pytest.approx(0.01)


def test_dcl_losses_and_center_update(tiny_data: TrainingSet) -> None:
    config = tiny_config(Path("."), recipe="dcl")
    net = build_reid_net(tiny_data.num_classes, (64, 32), recipe="dcl", pretrained=False)
    images = tf.constant(tiny_data.images[:6], tf.float32)
    labels = tf.constant(tiny_data.labels[:6])
    outputs = net(images, training=True)
    losses = compute_losses(net, outputs, labels, config)
    assert sorted(losses) == ["ce", "center", "decorrelation"]
    assert all(np.isfinite(float(value)) for value in losses.values())
    assert float(tf.reduce_max(tf.abs(outputs["logits"]))) <= config.scale + 1e-4
    update_centers(net, outputs, labels, rate=1.0)
    unit = tf.math.l2_normalize(outputs["embedding"], axis=1).numpy()
    for label in set(tiny_data.labels[:6].tolist()):
        np.testing.assert_allclose(net.centers.numpy()[label], unit[tiny_data.labels[:6] == label].mean(axis=0),
                                   atol=1e-5)


@pytest.mark.slow
def test_keep_last_exports_every_epoch_and_a_finished_checkpoint(tmp_path: Path,
                                                                  tiny_data: TrainingSet) -> None:
    query, _ = write_split(tmp_path / "val")
    config = tiny_config(tmp_path, epochs=2, keep="last", val_sets=(query.parent,))
    trained = Trainer(config, tiny_data)
    trained.run()
    metadata = ModelMetadata.load(tmp_path / "model")
    assert metadata.validation["epoch"] == 2 and metadata.recipe["trained_epochs"] == 2
    assert metadata.threshold is not None

    rerun_out = tmp_path / "fresh-checkout-model"
    rerun = Trainer(tiny_config(tmp_path, epochs=2, keep="last", val_sets=(query.parent,),
                                out_dir=rerun_out), tiny_data)
    assert rerun.run().global_step == trained.state.global_step  # nothing left to train
    again = ModelMetadata.load(rerun_out)
    assert again.model_id == metadata.model_id and again.validation["rank1"] == metadata.validation["rank1"]
    best = Trainer(tiny_config(tmp_path, epochs=2, val_sets=(query.parent,),
                               out_dir=tmp_path / "best-model"), tiny_data)
    best.run()
    assert not (tmp_path / "best-model").exists()  # the best epoch's weights are not in the checkpoint


@pytest.mark.slow
def test_a_distilled_run_starts_from_the_given_network_and_learns_the_teachers_targets(
        tmp_path: Path, train_dir: Path, teachers: list[Path]) -> None:
    Trainer(tiny_config(tmp_path / "source", data_dirs=(train_dir,), max_steps=0), None).run()
    source = Trainer(tiny_config(tmp_path / "source", data_dirs=(train_dir,), max_steps=0), None)
    source.restore(tmp_path / "source" / "run" / CHECKPOINT_FILE)

    config = tiny_config(tmp_path / "student", data_dirs=(train_dir,), init_from=tmp_path / "source" / "run",
                         teachers=tuple(teachers), distill_dims=4, max_steps=2, head_steps=5)
    student = Trainer(config, None)
    student.start_network()
    for a, b in zip(source.net.backbone.weights, student.net.backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(source.net.classifier.kernel.numpy(), student.net.classifier.kernel.numpy())
    assert np.abs(student.net.distill.kernel.numpy()).max() > 0  # fitted to the targets, not zero

    state = student.run()
    assert state.global_step == 2  # no head warm-up: the network came trained
    weights = student.net.distill.kernel.numpy()
    resumed = Trainer(config, None)
    resumed.restore(tmp_path / "student" / "run" / CHECKPOINT_FILE)
    np.testing.assert_array_equal(resumed.net.distill.kernel.numpy(), weights)
    losses = compute_losses(student.net, student.net(student.data.images[:6].astype(np.float32)),
                            tf.constant(student.data.labels[:6]), config, student.targets[:6])
    assert 0.0 < float(losses["distill"]) <= 2.0 * config.distill_weight
    assert changed_resume_keys(state.config, {**state.config, "teachers": [str(teachers[0])]}) == {
        "teachers": [str(path) for path in teachers]}


@pytest.mark.slow
def test_a_distilled_run_exports_its_head_and_can_seed_another_distilled_run(
        tmp_path: Path, train_dir: Path, teachers: list[Path]) -> None:
    config = tiny_config(tmp_path / "student", data_dirs=(train_dir,), teachers=tuple(teachers), distill_dims=4)
    student = Trainer(config, None)
    student.run()
    metadata = ModelMetadata.load(config.out_dir)
    assert metadata.embedding_dim == 4 and "-distill4-" in metadata.model_id
    assert metadata.projection["method"] == "distillation-head"
    rerun = Trainer(tiny_config(tmp_path / "student", data_dirs=(train_dir,), teachers=tuple(teachers), distill_dims=4,
                                keep="last", out_dir=tmp_path / "rebuilt"), None)
    rerun.run()
    assert ModelMetadata.load(tmp_path / "rebuilt").model_id == metadata.model_id
    assert "targets" not in vars(rerun)  # exporting a finished run embeds nothing with the teachers
    images = student.data.images[:6].astype(np.float32)
    exported = ReidEmbedder(config.out_dir).keras_model.predict(images, verbose=0)
    np.testing.assert_allclose(tf.math.l2_normalize(exported, axis=1).numpy(),
                               student.net(images)["distilled"].numpy(), atol=1e-5)

    second = Trainer(tiny_config(tmp_path / "second", data_dirs=(train_dir,), teachers=tuple(teachers[:1]),
                                 distill_dims=4, init_from=config.checkpoint_dir, max_steps=0), None)
    second.start_network()
    for a, b in zip(student.net.backbone.weights, second.net.backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    from_model = Trainer(tiny_config(tmp_path / "from-model", data_dirs=(train_dir,), init_from=config.out_dir,
                                     max_steps=0), None)
    from_model.start_network()  # an exported model directory: its backbone and BN neck
    for a, b in zip([*student.net.backbone.weights, *student.net.neck.weights],
                    [*from_model.net.backbone.weights, *from_model.net.neck.weights], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
