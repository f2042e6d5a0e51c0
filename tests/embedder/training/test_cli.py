"""The ``train`` command's help and its refusals."""

from __future__ import annotations

from pathlib import Path

import click
import keras
import pytest
from click.testing import CliRunner

from embedder.metadata import ModelMetadata
from embedder.training.export import export
from embedder.training.model import build_reid_net
from web.commands.train import export_command, register, train_command


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(train_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--out", "--checkpoint-dir", "--epochs", "--recipe", "--input-size",
                   "--val-set", "--report-set", "--teacher", "--colour-jitter", "--ibn / --no-ibn",
                   "--resume / --no-resume",
                   "--seed"):
        assert option in result.output


def test_missing_data_dir_fails_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_command, [str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "is not a directory" in result.output


def test_empty_data_dir_fails_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_command, [str(tmp_path), "--checkpoint-dir", str(tmp_path / "c"),
                                                "--max-steps", "0"])
    assert result.exit_code == 1
    assert "holds no <person>/<image> files" in result.output


def test_bad_input_size_and_a_set_without_query_and_gallery_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_command, [str(tmp_path), "--input-size", "256by128"])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output
    (tmp_path / "set" / "query").mkdir(parents=True)
    result = CliRunner().invoke(train_command, [str(tmp_path), "--val-set", str(tmp_path / "set")])
    assert result.exit_code == 2 and "nor a folder of sets" in result.output


def test_register_adds_the_command_to_a_group() -> None:
    group = click.Group("reid")
    register(group)
    assert group.get_command(click.Context(group), "train") is train_command


@pytest.mark.slow  # the export converts to OpenVINO
def test_export_writes_the_seeds_form_and_refuses_a_missing_model(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = build_reid_net(3, (64, 32), pretrained=False).inference_model()
    export(model, tmp_path / "model", ModelMetadata(model_id="m", input_size=(64, 32), embedding_dim=1280))
    result = CliRunner().invoke(export_command, [str(tmp_path / "model"), "--out", str(tmp_path / "h5"),
                                                 "--format", "keras-json-h5"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "h5").iterdir()) == ["metadata.json", "model.h5", "model.json"]
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(export_command, [str(tmp_path / "empty"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "metadata.json" in result.output
