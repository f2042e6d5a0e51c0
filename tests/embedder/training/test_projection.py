"""Fisher LDA: the hand-computed case, its errors, the appended layer and ``reid fit-projection``."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from embedder.datasets import list_identity_folders
from embedder.evaluation.evaluate import embed_items
from embedder.metadata import ModelMetadata
from embedder.reid_model import ReidEmbedder
from embedder.training.export import export
from embedder.training.lda import fit_lda
from embedder.training.model import build_reid_net
from embedder.training.projection import append_projection, project_model
from web.commands.train import fit_projection_command

SIZE = (64, 32)


def test_two_persons_in_the_plane_project_onto_the_axis_that_separates_them() -> None:
    # Persons a at (0, 0), (0, 2) and b at (2, 0), (2, 2): S_w = diag(0, 1), shrunk by its mean
    # eigenvalue 0.5 to diag(0.5, 1.5); S_b = diag(1, 0). The solution is v = (a, 0) with
    # v' S_w v = 0.5 a^2 = 1, so a = sqrt(2).
    points = [[0, 0], [0, 2], [2, 0], [2, 2]]
    projection = fit_lda(points, ["a", "a", "b", "b"], dims=1, shrinkage=1.0)
    np.testing.assert_allclose(np.abs(projection), [[np.sqrt(2)], [0.0]], atol=1e-6)


def test_the_projection_whitens_the_within_person_scatter() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 10)
    embeddings = rng.normal(size=(12, 8))[labels] + 0.3 * rng.normal(size=(120, 8)) * np.arange(1, 9)
    projection = fit_lda(embeddings, labels, dims=5, shrinkage=0.5).astype(np.float64)
    means = np.stack([embeddings[labels == p].mean(0) for p in range(12)])
    deviations = embeddings - means[labels]
    within = deviations.T @ deviations / len(embeddings)
    within += 0.5 * np.trace(within) / 8 * np.eye(8)
    np.testing.assert_allclose(projection.T @ within @ projection, np.eye(5), atol=1e-4)


@pytest.mark.parametrize(("labels", "dims", "shrinkage", "message"), [
    (["a"] * 4, 1, 1.0, "at least two persons"),
    (["a", "a", "b", "b"], 2, 1.0, r"dims must lie in 1\.\.1"),
    (["a", "a", "b", "b"], 1, 0.0, "shrinkage must be positive"),
    (["a", "b"], 1, 1.0, "need .N, D. embeddings and N labels"),
])
def test_bad_arguments_are_refused(labels: list[str], dims: int, shrinkage: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_lda(np.eye(4, 3), labels, dims, shrinkage)


def test_the_appended_layer_applies_the_projection() -> None:
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    projection = np.random.default_rng(1).normal(size=(3, 2)).astype(np.float32)
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    projected = append_projection(model, projection)
    np.testing.assert_allclose(projected.predict(x, verbose=0), model.predict(x, verbose=0) @ projection,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"projection must be \(3, dims\)"):
        append_projection(model, projection.T)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an exported random-weight re-ID model that flip-averages."""
    keras.utils.set_random_seed(0)
    net = build_reid_net(5, SIZE, pretrained=False)
    metadata = ModelMetadata(model_id="reid-test-0123456789ab", input_size=SIZE, embedding_dim=1280,
                             flip_average=True, threshold=0.4)
    return export(net.inference_model(), tmp_path_factory.mktemp("model") / "model", metadata)


@pytest.mark.slow
def test_projected_model_embeds_the_projected_unit_vectors(trained_dir: Path, train_dir: Path,
                                                           tmp_path: Path) -> None:
    metadata = project_model(trained_dir, train_dir, tmp_path / "lda", dims=3, progress=False)
    assert metadata.model_id.startswith("reid-test-lda3-") and metadata.embedding_dim == 3
    assert metadata.threshold is None and metadata.validation == {}
    assert metadata.projection["source_model"] == "reid-test-0123456789ab"
    assert metadata.projection["fitted_on"].startswith("27 images of 6 persons")

    items = list_identity_folders(train_dir)
    before = embed_items(ReidEmbedder(trained_dir), items, progress=False)
    projection = fit_lda(before, [item.person for item in items], dims=3)
    expected = before @ projection
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    projected = ReidEmbedder(tmp_path / "lda")
    assert projected.dim == 3 and projected.metadata.flip_average
    np.testing.assert_allclose(embed_items(projected, items, progress=False), expected, atol=1e-4)

    with pytest.raises(ValueError, match="already ends in a projection"):
        project_model(tmp_path / "lda", train_dir, tmp_path / "twice", dims=2, progress=False)


@pytest.mark.slow
def test_the_command_writes_the_model_or_says_what_is_wrong(trained_dir: Path, train_dir: Path,
                                                            tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(fit_projection_command, [str(train_dir), "--model", str(trained_dir),
                                                  "--out", str(tmp_path / "lda"), "--dims", "4"])
    assert done.exit_code == 0, done.output
    assert "reid calibrate --model" in done.output and ModelMetadata.load(tmp_path / "lda").embedding_dim == 4

    too_many = runner.invoke(fit_projection_command, [str(train_dir), "--model", str(trained_dir),
                                                      "--out", str(tmp_path / "x"), "--dims", "6"])
    assert too_many.exit_code == 1 and "dims must lie in 1..5" in too_many.output
    assert not (tmp_path / "x").exists()
