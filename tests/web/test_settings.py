"""The settings: read from ``REID_*`` variables, checked before the app or any command starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.pedestrian_adas import DEFAULT_ADAS_PATH
from web import create_app
from web.cli import cli
from web.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def no_reid_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start each test from the defaults, whatever the developer's shell sets."""
    import os

    for key in [key for key in os.environ if key.upper().startswith("REID_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("args", [["serve"], ["serve", "--dev"], ["persons"], ["db", "upgrade"]])
def test_a_bad_value_stops_any_command_naming_its_variable(runner: CliRunner, tmp_path: Path,
                                                           args: list[str]) -> None:
    result = runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], env={"REID_TOP_K": "abc"})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "REID_TOP_K" in result.output and "'abc'" in result.output and "integer" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()  # stopped before anything was created


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REID_MATCH_THRESHOLD", "1.5")
    monkeypatch.setenv("REID_SESSION_COOKIE_SECURE", "maybe")
    monkeypatch.setenv("REID_MAX_FILES", "0")
    with pytest.raises(SettingsError) as raised:
        create_app()
    message = str(raised.value)
    assert "REID_MATCH_THRESHOLD: Input should be less than or equal to 1 (got '1.5')" in message
    assert "REID_SESSION_COOKIE_SECURE" in message and "REID_MAX_FILES" in message


def test_test_config_values_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="REID_TOP_K: Input should be less than or equal to 100"):
        create_app({"DATA_DIR": str(tmp_path), "TOP_K": 500})


def test_secrets_are_not_repeated_in_the_message() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"SECRET_KEY": 12345, "DATABASE_URL": 67890})
    message = str(raised.value)
    assert "REID_SECRET_KEY" in message and "REID_DATABASE_URL" in message
    assert "12345" not in message and "67890" not in message


def test_values_are_parsed_and_reach_flask_and_the_state(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REID_DATA_DIR", "~/reid-data")
    monkeypatch.setenv("REID_MAX_IMAGE_PIXELS", "null")
    monkeypatch.setenv("REID_SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("REID_TOP_K", "7")
    app = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 1000})
    settings = app.extensions["reid"].settings
    assert settings.data_dir == tmp_path / "reid-data"
    assert settings.max_image_pixels is None and settings.top_k == 7
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["MAX_CONTENT_LENGTH"] == 1000
    assert app.config["TESTING"] is True
    assert app.config["SECRET_KEY"] == (tmp_path / "reid-data" / "secret_key").read_text()
    app.extensions["reid"].engine.dispose()


def test_defaults_follow_xdg(tmp_path: Path) -> None:
    assert load_settings().data_dir == tmp_path / "xdg" / "reid"


def test_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown settings: top_kk"):
        load_settings({"TOP_KK": 3})


def test_detector_settings_become_plain_arguments(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.detector == "auto" and settings.detector_min_score is None
    assert settings.detector_options() == {"tiles": True, "tile_size": None, "model_path": None,
                                           "precision": "auto"}
    assert settings.embedder_options() == {"precision": "auto"}
    settings = load_settings({"DETECTOR_TILING": "off", "DETECTOR_TILE_SIZE": 1008,
                              "DETECTOR_MODEL": "~/models/adas", "FOOTAGE_TILE_EVERY": 3,
                              "INFERENCE_PRECISION": "f32"})
    assert settings.detector_options() == {"tiles": False, "tile_size": 1008,
                                           "model_path": Path("~/models/adas").expanduser(),
                                           "precision": "f32"}
    assert settings.embedder_options() == {"precision": "f32"}
    assert settings.footage_tile_every == 3
    for bad, name in (({"DETECTOR_TILING": "always"}, "REID_DETECTOR_TILING"),
                      ({"DETECTOR_TILE_SIZE": 8}, "REID_DETECTOR_TILE_SIZE"),
                      ({"INFERENCE_PRECISION": "fp16"}, "REID_INFERENCE_PRECISION"),
                      ({"FOOTAGE_TILE_EVERY": 0}, "REID_FOOTAGE_TILE_EVERY")):
        with pytest.raises(SettingsError, match=name):
            load_settings(bad)


@pytest.mark.skipif(not DEFAULT_ADAS_PATH.is_dir(), reason="the pedestrian-adas files are absent")
def test_a_forced_precision_reaches_both_models(tmp_path: Path, database_url: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({"DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "DETECTOR": "pedestrian-adas",
                      "INFERENCE_PRECISION": "f32"})
    with app.app_context(), caplog.at_level(logging.INFO):
        app.extensions["reid"].warm()
    compiled = [r.getMessage() for r in caplog.records if "with OpenVINO" in r.getMessage()]
    assert len(compiled) == 2 and all("with OpenVINO: f32" in message for message in compiled), compiled
    app.extensions["reid"].engine.dispose()


def test_a_missing_detector_model_is_named_before_serving(tmp_path: Path, database_url: str) -> None:
    app = create_app({"DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "EMBEDDER": "test-thumbnail",
                      "DETECTOR": "pedestrian-adas", "DETECTOR_MODEL": str(tmp_path / "missing")})
    with app.app_context(), pytest.raises(SettingsError, match=r"REID_DETECTOR_MODEL: .*missing"):
        app.extensions["reid"].gallery  # noqa: B018 (the gallery builds the detector)
