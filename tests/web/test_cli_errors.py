"""How ``reid`` commands fail: the project's refusals as a message, anything else as a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from click.testing import CliRunner

from base.images import BGRImage
from embedder.base import Embedder
from web.cli import cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class MisconfiguredPlugin(Embedder):
    """A plug-in embedder (``REID_EMBEDDER=module:factory``) with a bug: it looks up a key its
    own table lacks when it loads."""

    model_id = "misconfigured-plugin-v1"
    dim = 8
    SIZES: ClassVar[dict[str, int]] = {"small": 8}

    def _load(self) -> None:
        self.size = self.SIZES["large"]

    def _embed(self, images: Sequence[BGRImage]) -> np.ndarray:
        return np.ones((len(images), self.dim), dtype=np.float32)


def still(tmp_path: Path) -> Path:
    path = tmp_path / "still.jpg"
    cv2.imwrite(str(path), np.full((128, 64, 3), 90, dtype=np.uint8))
    return path


def test_a_bug_in_a_command_keeps_its_traceback(cli_env: Path, tmp_path: Path) -> None:
    env = {**os.environ, "REID_EMBEDDER": f"{__name__}:MisconfiguredPlugin",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", "from web.cli import main; main()", "search",
                           str(still(tmp_path))], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "KeyError: 'large'" in done.stderr and 'self.size = self.SIZES["large"]' in done.stderr


def test_a_bug_is_not_passed_off_as_a_refusal(runner: CliRunner, cli_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["search", str(still(tmp_path))],
                           env={"REID_EMBEDDER": f"{__name__}:MisconfiguredPlugin"})
    assert result.exit_code == 1 and type(result.exception) is KeyError
    assert "Error:" not in result.output


def test_an_unknown_model_name_is_a_message_naming_the_variable(runner: CliRunner, cli_env: Path,
                                                                tmp_path: Path) -> None:
    for variable, words in (("REID_EMBEDDER", "unknown embedder 'no-such-model'"),
                            ("REID_DETECTOR", "unknown detector 'no-such-model'")):
        result = runner.invoke(cli, ["search", str(still(tmp_path))], env={variable: "no-such-model"})
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert f"Error: {variable}: {words}" in result.output
        assert "Traceback" not in result.output
