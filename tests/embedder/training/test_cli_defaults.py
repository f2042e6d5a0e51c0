"""``reid train``'s defaults are ``TrainConfig``'s, written once, and read only when needed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from embedder.training.config import TrainConfig
from web.commands.train import TrainConfigOption, train_command

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_options_default_to_the_train_config_fields(tmp_path: Path) -> None:
    config = TrainConfig(data_dirs=(tmp_path,))
    params = train_command.make_context("train", [str(tmp_path)]).params
    backed = [p.name for p in train_command.params if isinstance(p, TrainConfigOption)]
    assert len(backed) >= 15
    for name in backed:
        assert params[name] == getattr(config, name), name
    names = {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(backed) <= names


def test_help_shows_the_defaults() -> None:
    output = " ".join(CliRunner().invoke(train_command, ["--help"]).output.split())
    for shown in ("[default: 256x128]", "[default: 60; x>=1]", "[default: flip-average]",
                  "[default: best]"):
        assert shown in output, shown


def test_starting_reid_does_not_load_tensorflow() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, web.cli; print('tensorflow' in sys.modules)"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
