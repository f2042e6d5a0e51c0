"""A tiny training run: interrupted and resumed, it ends where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.metadata import ModelMetadata
from embedder.reid_model import ReidEmbedder
from embedder.training.checkpoint import CHECKPOINT_FILE, HISTORY_FILE, read_state
from embedder.training.data import TrainingSet, load_training_set
from embedder.training.train import TrainConfig, Trainer, learning_rate_at
from tests.embedder.evaluation.fakes import write_split


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> TrainingSet:
    from tests.embedder.training.conftest import write_training_tree

    root = write_training_tree(tmp_path_factory.mktemp("tiny") / "train")
    return load_training_set(root, (64, 32), progress=False)


def tiny_config(root: Path, **overrides: object) -> TrainConfig:
    """Return a 64x32, 3 x 2 batch, one-epoch (four steps) config writing under ``root``."""
    settings: dict = dict(
        data_dir=root / "unused", checkpoint_dir=root / "run", out_dir=root / "model",
        input_size=(64, 32), persons_per_batch=3, images_per_person=2, epochs=1, head_steps=1,
        warmup_epochs=0.5, frozen_blocks=4, pretrained=False, progress=False,
        checkpoint_minutes=1e9, seed=5)
    settings.update(overrides)
    return TrainConfig(**settings)


def weights_of(trainer: Trainer) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in trainer.net.weights]


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(
        tmp_path: Path, tiny_data: TrainingSet) -> None:
    query, gallery = write_split(tmp_path / "val")
    whole = Trainer(tiny_config(tmp_path / "whole", val_query=query, val_gallery=gallery), tiny_data)
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
    embedder = ReidEmbedder(tmp_path / "whole" / "model")
    assert embedder.model_id == metadata.model_id and embedder.dim == 1280


def test_resuming_from_the_compact_published_copy(tmp_path: Path, tiny_data: TrainingSet) -> None:
    publish = tmp_path / "published"
    first = Trainer(tiny_config(tmp_path / "a", publish_checkpoint_dir=publish, max_steps=2), tiny_data)
    first.run()
    assert (publish / CHECKPOINT_FILE).stat().st_size < (tmp_path / "a" / "run" / CHECKPOINT_FILE).stat().st_size
    # A fresh checkout: no working checkpoint, only the committed compact copy.
    fresh = Trainer(tiny_config(tmp_path / "b", publish_checkpoint_dir=publish, max_steps=0), tiny_data)
    fresh.run()
    assert (fresh.state.epoch, fresh.state.step, fresh.state.global_step) == (0, 2, 2)
    for a, b in zip(weights_of(first), weights_of(fresh), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path: Path, tiny_data: TrainingSet) -> None:
    Trainer(tiny_config(tmp_path, max_steps=1), tiny_data).run()
    with pytest.raises(ValueError, match="persons_per_batch"):
        Trainer(tiny_config(tmp_path, persons_per_batch=2), tiny_data).run()


def test_learning_rate_warms_up_holds_then_decays() -> None:
    config = TrainConfig(data_dir=Path("."), epochs=10, warmup_epochs=2, learning_rate=1.0)
    assert learning_rate_at(config, 0, 0, 100) == pytest.approx(0.1)
    assert learning_rate_at(config, 1, 0, 100) == pytest.approx(0.55)
    assert learning_rate_at(config, 3, 0, 100) == pytest.approx(1.0)
    assert learning_rate_at(config, 5, 0, 100) == pytest.approx(1.0)
    assert learning_rate_at(config, 10, 0, 100) == pytest.approx(0.01)
