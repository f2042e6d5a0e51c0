"""Fixtures: a tiny generated training tree of per-person folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.embedder.training.fakes import write_training_tree


@pytest.fixture
def train_dir(tmp_path: Path) -> Path:
    """Return a generated training tree of six persons."""
    return write_training_tree(tmp_path / "train")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Return two exported random-weight 64x32 re-ID models (the first flip-averages)."""
    import keras

    from embedder.metadata import ModelMetadata
    from embedder.training.export import export
    from embedder.training.model import build_reid_net

    folders = []
    for seed, flip in ((0, True), (1, False)):
        keras.utils.set_random_seed(seed)
        net = build_reid_net(5, (64, 32), pretrained=False)
        metadata = ModelMetadata(model_id=f"teacher-{seed}", input_size=(64, 32), embedding_dim=1280,
                                 flip_average=flip)
        folders.append(export(net.inference_model(), tmp_path_factory.mktemp(f"teacher{seed}") / "model",
                              metadata))
    return folders
