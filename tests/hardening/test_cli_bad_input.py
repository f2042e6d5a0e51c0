"""The ``reid`` command line on hostile and broken input: a message, a non-zero exit, no
traceback, and nothing stored changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.hardening.conftest import gallery_snapshot
from tests.hardening.corpus import BAD_FILES, bad_file, good_jpeg
from web import create_app
from web.cli import cli

HUGE_ID = "9" * 30


def snapshot(root: Path) -> dict:
    """The gallery as an app built from the ``cli_env`` environment sees it."""
    app = create_app()
    try:
        return gallery_snapshot(app, root)
    finally:
        app.extensions["reid"].engine.dispose()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "query.jpg"
    path.write_bytes(good_jpeg(1, 7))
    return path


@pytest.fixture
def cli_seeded(runner: CliRunner, cli_env: Path, tmp_path: Path) -> None:
    """Enroll one person, Existing, with two images."""
    paths = []
    for variant in range(2):
        paths.append(tmp_path / f"existing_{variant}.jpg")
        paths[-1].write_bytes(good_jpeg(1, variant))
    result = runner.invoke(cli, ["enroll", "--name", "Existing", *map(str, paths)])
    assert result.exit_code == 0, result.output


def run_refused(runner: CliRunner, root: Path, good: Path, args: list[str], words: str) -> None:
    before = snapshot(root)
    result = runner.invoke(cli, args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    assert words in result.output, result.output
    assert "Traceback" not in result.output
    valid = runner.invoke(cli, ["search", str(good)])
    assert valid.exit_code == 0 and "1. Existing" in valid.output, valid.output
    assert snapshot(root) == before


@pytest.mark.parametrize("command", ["enroll", "search"])
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file(runner: CliRunner, tmp_path: Path, good: Path, cli_seeded: None,
                  case: str, command: str) -> None:
    data, filename, words = bad_file(case)
    path = tmp_path / "bad" / filename
    path.parent.mkdir()
    path.write_bytes(data)
    args = ["enroll", "--name", "X", str(path)] if command == "enroll" else ["search", str(path)]
    run_refused(runner, tmp_path, good, args, f"{filename}: {words}")


CASES = {
    "search top-k negative": (["search", "{good}", "--top-k", "-1"], "top_k must be between 1 and 100, got -1"),
    "search top-k huge": (["search", "{good}", "--top-k", HUGE_ID], "top_k must be between 1 and 100"),
    "search top-k text": (["search", "{good}", "--top-k", "ten"], "'ten' is not a valid integer"),
    "search threshold nan": (["search", "{good}", "--threshold", "nan"],
                             "threshold must be a cosine similarity between -1 and 1, got nan"),
    "search threshold inf": (["search", "{good}", "--threshold", "inf"], "between -1 and 1, got inf"),
    "search threshold negative": (["search", "{good}", "--threshold", "-2"], "between -1 and 1, got -2.0"),
    "search a directory": (["search", "{dir}"], "is a directory"),
    "enroll name 10000 chars": (["enroll", "--name", "x" * 10_000, "{good}"],
                                "the name is 10000 characters long; at most 200 allowed"),
    "enroll name control chars": (["enroll", "--name", "Ann\x1b[2J\x00", "{good}"],
                                  "the name must not contain control characters"),
    "enroll notes with NUL": (["enroll", "--name", "X", "--notes", "a\x00b", "{good}"],
                              "the notes must not contain control characters"),
    "enroll same file twice": (["enroll", "--name", "X", "{good}", "{good}"], "query.jpg is uploaded twice"),
    "enroll huge person id": (["enroll", "--person-id", HUGE_ID, "{good}"], f"no person has id {HUGE_ID}"),
    "delete huge id": (["delete", HUGE_ID], f"no person has id {HUGE_ID}"),
    "delete id 2**31": (["delete", str(2**31)], f"no person has id {2**31}"),
    "delete-image huge id": (["delete-image", HUGE_ID], f"no image has id {HUGE_ID}"),
    "delete negative id": (["delete", "--", "-1"], "no person has id -1"),
    "delete id text": (["delete", "ann"], "'ann' is not a valid integer"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_arguments(runner: CliRunner, tmp_path: Path, good: Path, cli_seeded: None, case: str) -> None:
    template, words = CASES[case]
    args = [arg.format(good=good, dir=tmp_path) if arg.startswith("{") else arg for arg in template]
    run_refused(runner, tmp_path, good, args, words)
