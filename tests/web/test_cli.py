"""The ``reid`` command line, run with Click's runner on a real data dir."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from click.testing import CliRunner

from gallery.db import sqlite_url
from gallery.schema import head_revision
from tests.conftest import person_image
from web.cli import cli


def write_images(folder: Path, person: int, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in range(n):
        path = folder / f"{person}_{v}.jpg"
        cv2.imwrite(str(path), person_image(person, v))
        paths.append(str(path))
    return paths


def test_enroll_search_persons_delete(runner: CliRunner, cli_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["enroll", "--name", "Hana", *write_images(tmp_path / "h", 1, 2)])
    assert result.exit_code == 0, result.output
    assert "person 1 (Hana): added image(s) 1, 2" in result.output
    runner.invoke(cli, ["enroll", "--name", "Ivo", *write_images(tmp_path / "i", 2, 2)])
    more = runner.invoke(cli, ["enroll", "--person-id", "1", *write_images(tmp_path / "h2", 1, 3)[2:]])
    assert "added image(s) 5" in more.output

    listing = runner.invoke(cli, ["persons"])
    assert "Hana  (3 images)" in listing.output and "Ivo  (2 images)" in listing.output

    query = write_images(tmp_path / "q", 1, 5)[4]
    text = runner.invoke(cli, ["search", query, "--top-k", "2"])
    assert text.exit_code == 0 and "1. Hana (person 1)" in text.output and "MATCH" in text.output
    body = json.loads(runner.invoke(cli, ["search", query, "--json", "--threshold", "0.99"]).output)
    assert body["threshold"] == 0.99 and body["results"][0]["matches"][0]["name"] == "Hana"

    deleted = runner.invoke(cli, ["delete", "1"])
    assert deleted.exit_code == 0 and '"files": 3' in deleted.output
    assert "Hana" not in runner.invoke(cli, ["persons"]).output


def test_bad_input_gives_message_and_nonzero_exit(runner: CliRunner, cli_env: Path, tmp_path: Path) -> None:
    text = tmp_path / "note.txt"
    text.write_text("not an image")
    cases = {
        ("enroll", "--name", "X", str(text)): "note.txt: the file is not an image",
        ("enroll", str(text)): "give exactly one of --name",
        ("enroll", "--name", "", *write_images(tmp_path, 1, 1)): "a name is required",
        ("search", str(text)): "not an image",
        ("search", *write_images(tmp_path, 2, 1), "--top-k", "0"): "top_k must be between",
        ("search", *write_images(tmp_path, 3, 1), "--threshold", "abc"): "is not a valid float",
        ("delete", "42"): "no person has id 42",
        ("delete-image", "42"): "no image has id 42",
        ("enroll", "--name", "X", str(tmp_path / "missing.jpg")): "does not exist",
    }
    for args, message in cases.items():
        result = runner.invoke(cli, list(args))
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert "nobody is enrolled yet" in runner.invoke(cli, ["persons"]).output


def test_db_commands_and_unmigrated_database(runner: CliRunner, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    env = {"REID_EMBEDDER": "test-thumbnail", "REID_DETECTOR": "none"}
    refused = runner.invoke(cli, ["--data-dir", str(fresh), "persons"], env=env)
    assert refused.exit_code == 1 and "run `reid db upgrade`" in refused.output
    assert runner.invoke(cli, ["--data-dir", str(fresh), "db", "upgrade"], env=env).exit_code == 0
    current = runner.invoke(cli, ["--data-dir", str(fresh), "db", "current"], env=env).output.strip()
    assert current == head_revision(sqlite_url(fresh / "reid.db"))
    assert runner.invoke(cli, ["--data-dir", str(fresh), "persons"], env=env).exit_code == 0


def test_help_lists_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    for command in ("serve", "db", "enroll", "search", "delete", "persons"):
        assert command in result.output
