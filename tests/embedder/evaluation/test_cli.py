"""The evaluate, calibrate and verify commands through the Click runner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import cv2
import pytest
from click.testing import CliRunner, Result

from embedder import registry
from embedder.metadata import ModelMetadata
from tests.embedder.evaluation.fakes import PERSON_COLOURS, ColourEmbedder, person_image, write_split
from web.commands.evaluate import (
    calibrate_command,
    evaluate_command,
    register,
    verify_command,
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """Return a model directory whose metadata carries no threshold yet."""
    path = tmp_path / "model"
    path.mkdir()
    ModelMetadata(model_id="fake-colour", input_size=(48, 24), embedding_dim=6).save(path)
    return path


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> list[str]:
    """Make the registry build colour embedders (with the model directory's metadata)."""
    specs: list[str] = []

    def build(spec: str, **kwargs: object) -> ColourEmbedder:
        specs.append(spec)
        return ColourEmbedder(ModelMetadata.load(model_dir))

    monkeypatch.setattr(registry, "build_embedder", build)
    monkeypatch.setattr(registry, "default_embedder_spec", lambda: str(model_dir))
    return specs


def invoke(command: click.Command, *args: object) -> Result:
    return CliRunner().invoke(command, [str(arg) for arg in args])


def test_evaluate_json_is_one_object_on_stdout(built: list[str], split: tuple[Path, Path]) -> None:
    query, gallery = split
    result = invoke(evaluate_command, "--query", query, "--gallery", gallery, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rank1"] == pytest.approx(7 / 8)
    assert data["threshold"] == 0.5 and data["threshold_source"] == "default"
    assert "embedding" not in result.stdout and "query" in result.stderr  # progress on stderr
    assert len(built) == 1


def test_evaluate_text_uses_the_calibrated_threshold(built: list[str], split: tuple[Path, Path],
                                                     model_dir: Path, tmp_path: Path) -> None:
    metadata = ModelMetadata.load(model_dir)
    metadata.threshold = 0.75
    metadata.save(model_dir)
    query, gallery = split
    result = invoke(evaluate_command, "--query", query, "--gallery", gallery, "--model", model_dir,
                    "--plots", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert "rank-1                87.50%" in result.stdout
    assert "threshold             0.7500 (calibrated)" in result.stdout
    assert "false detection rate" in result.stdout
    assert (tmp_path / "plots" / "ranked.png").is_file()
    assert built == [str(model_dir)]


def test_evaluate_given_threshold_wins(built: list[str], split: tuple[Path, Path]) -> None:
    query, gallery = split
    result = invoke(evaluate_command, "--query", query, "--gallery", gallery, "--threshold", "0.2",
                    "--json")
    assert json.loads(result.stdout)["verification"]["threshold"] == 0.2


def test_evaluate_bad_input_gives_a_message_not_a_traceback(
        built: list[str], split: tuple[Path, Path], tmp_path: Path) -> None:
    query, gallery = split
    missing = invoke(evaluate_command, "--query", tmp_path / "absent", "--gallery", gallery)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "empty").mkdir()
    empty = invoke(evaluate_command, "--query", tmp_path / "empty", "--gallery", gallery)
    assert empty.exit_code == 1 and "holds no" in empty.output
    (gallery / "p2" / "p2_c2_7.jpg").write_bytes(b"\xff\xd8 broken")
    broken = invoke(evaluate_command, "--query", query, "--gallery", gallery)
    assert broken.exit_code == 1 and "p2_c2_7.jpg" in broken.output
    for result in (missing, empty, broken):
        assert isinstance(result.exception, SystemExit)


def test_unknown_model_lists_the_known_names(split: tuple[Path, Path]) -> None:
    query, gallery = split
    result = invoke(evaluate_command, "--query", query, "--gallery", gallery, "--model", "no-such-model")
    assert result.exit_code == 2
    assert "unknown embedder 'no-such-model'" in result.output and "imagenet" in result.output


def test_calibrate_stores_the_threshold(built: list[str], split: tuple[Path, Path],
                                        model_dir: Path) -> None:
    query, gallery = split
    result = invoke(calibrate_command, "--query", query, "--gallery", gallery,
                    "--target-fmr", "0.05", "--model", model_dir)
    assert result.exit_code == 0, result.output
    stored = ModelMetadata.load(model_dir)
    assert stored.threshold is not None and stored.threshold_target_fmr == 0.05
    assert stored.validation["calibration"]["fmr"] <= 0.05
    assert f"threshold             {stored.threshold:.6f}" in result.stdout
    assert str(model_dir / "metadata.json") in result.stdout


def test_calibrate_needs_a_model_directory(built: list[str], split: tuple[Path, Path]) -> None:
    query, gallery = split
    result = invoke(calibrate_command, "--query", query, "--gallery", gallery,
                    "--model", "imagenet-mobilenetv2")
    assert result.exit_code == 2 and "not a directory" in result.output
    assert built == []


def test_calibrate_rejects_a_target_outside_0_1(built: list[str], split: tuple[Path, Path]) -> None:
    query, gallery = split
    result = invoke(calibrate_command, "--query", query, "--gallery", gallery, "--target-fmr", "2")
    assert result.exit_code == 2


@pytest.mark.parametrize(("other", "verdict"), [("p0", "TRUE"), ("p1", "FALSE")])
def test_verify_prints_the_verdict_and_score(built: list[str], tmp_path: Path,
                                             other: str, verdict: str) -> None:
    image_a, image_b = tmp_path / "a.png", tmp_path / "b.jpg"
    cv2.imwrite(str(image_a), person_image(*PERSON_COLOURS["p0"], 0))
    cv2.imwrite(str(image_b), person_image(*PERSON_COLOURS[other], 15))
    result = invoke(verify_command, image_a, image_b, "--threshold", "0.8")
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[0] == verdict and "score=" in result.stdout


def test_verify_unreadable_image(built: list[str], tmp_path: Path) -> None:
    image_a, image_b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(image_a), person_image(*PERSON_COLOURS["p0"], 0))
    image_b.write_text("text")
    result = invoke(verify_command, image_a, image_b)
    assert result.exit_code == 1 and "b.png" in result.output


def test_register_adds_the_commands() -> None:
    group = click.Group("reid")
    register(group)
    assert {"evaluate", "calibrate", "verify"} <= set(group.commands)


def test_evaluate_rerank_is_reported_apart(built: list[str], split: tuple[Path, Path]) -> None:
    query, gallery = split
    args = ("--query", query, "--gallery", gallery, "--rerank", "--rerank-k1", "2",
            "--rerank-k2", "1")
    data = json.loads(invoke(evaluate_command, *args, "--json").stdout)
    assert data["rank1"] == pytest.approx(7 / 8)
    assert data["reranked"]["k1"] == 2 and data["reranked"]["k2"] == 1
    assert 0.0 <= data["reranked"]["mAP"] <= 1.0
    text = invoke(evaluate_command, *args).stdout
    assert "re-ranked (k-reciprocal, k1=2 k2=1 lambda=0.3; not the standard protocol)" in text
    assert "rank-1                87.50%" in text


def test_evaluate_without_rerank_has_no_reranked_figures(built: list[str],
                                                          split: tuple[Path, Path]) -> None:
    query, gallery = split
    data = json.loads(invoke(evaluate_command, "--query", query, "--gallery", gallery,
                             "--json").stdout)
    assert "reranked" not in data


def test_evaluate_several_sets_prints_each_and_their_mean(built: list[str], tmp_path: Path) -> None:
    write_split(tmp_path / "sets" / "first")
    write_split(tmp_path / "sets" / "second")
    result = invoke(evaluate_command, "--set", tmp_path / "sets", "--json")  # a folder of sets
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [entry["name"] for entry in data["sets"]] == ["first", "second"]
    assert data["mean"]["rank1"] == pytest.approx(7 / 8) and data["mean"]["mAP"] == pytest.approx(
        (data["sets"][0]["mAP"] + data["sets"][1]["mAP"]) / 2)
    text = invoke(evaluate_command, "--set", tmp_path / "sets" / "first", "--set", tmp_path / "sets" / "second")
    assert text.exit_code == 0 and "== first" in text.output and "\nmean " in text.output


def test_sets_and_folders_are_not_mixed_and_a_non_set_is_refused(built: list[str], tmp_path: Path,
                                                                  split: tuple[Path, Path]) -> None:
    query, gallery = split
    mixed = invoke(evaluate_command, "--query", query, "--gallery", gallery, "--set", query.parent)
    assert mixed.exit_code == 2 and "not both" in mixed.output
    assert invoke(evaluate_command, "--query", query).exit_code == 2
    not_a_set = invoke(evaluate_command, "--set", query)
    assert not_a_set.exit_code == 2 and "nor a folder of sets" in not_a_set.output


def test_calibrate_pools_the_pairs_of_several_sets(built: list[str], model_dir: Path, tmp_path: Path) -> None:
    write_split(tmp_path / "sets" / "first")
    write_split(tmp_path / "sets" / "second")
    result = invoke(calibrate_command, "--set", tmp_path / "sets", "--target-fmr", 0.05)
    assert result.exit_code == 0, result.output
    stored = ModelMetadata.load(model_dir)
    assert [entry["name"] for entry in stored.validation["sets"]] == ["first", "second"]
    single = invoke(calibrate_command, "--set", tmp_path / "sets" / "first", "--target-fmr", 0.05)
    assert single.exit_code == 0
    pairs = ModelMetadata.load(model_dir).validation["calibration"]["impostor_pairs"]
    assert stored.validation["calibration"]["impostor_pairs"] == 2 * pairs
