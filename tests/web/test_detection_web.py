"""The enrollment gate and 'nobody detected' through the API, the pages and the CLI, with the SSDLite detector."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from skimage import data as skdata

from base.images import BGRImage, decode_image
from tests.conftest import form_token
from web import create_app
from web.cli import cli


def png(image: BGRImage) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


ASTRONAUT = np.ascontiguousarray(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
PAIR = np.concatenate([ASTRONAUT, ASTRONAUT[:, ::-1]], axis=1)
WALL = np.full((300, 200, 3), 150, np.uint8)


@pytest.fixture(scope="module")
def ssdlite_app(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Flask]:
    """The app on the fake embedder and the real SSDLite detector (one per module: it loads once)."""
    import shutil

    from gallery.db import sqlite_url

    root = tmp_path_factory.mktemp("ssdlite-app")
    shutil.copyfile(sqlite_template, root / "reid.db")
    app = create_app({"TESTING": True, "DATA_DIR": str(root / "data"),
                      "DATABASE_URL": sqlite_url(root / "reid.db"), "EMBEDDER": "test-thumbnail",
                      "DETECTOR": "ssdlite", "MATCH_THRESHOLD": 0.8})
    yield app
    app.extensions["reid"].engine.dispose()


@pytest.fixture
def client(ssdlite_app: Flask) -> FlaskClient:
    return ssdlite_app.test_client()


def upload(image: BGRImage, name: str) -> tuple[io.BytesIO, str]:
    return io.BytesIO(png(image)), name


def test_api_refuses_images_that_are_not_one_person(client: FlaskClient) -> None:
    refused = client.post("/api/persons", data={"name": "Eileen", "images": [
        upload(ASTRONAUT, "ok.png"), upload(WALL, "wall.png"), upload(PAIR, "pair.png")]})
    assert refused.status_code == 400
    error = refused.json["error"]
    assert error["code"] == "notoneperson"
    assert "wall.png: no person found" in error["message"] and "pair.png: 2 persons found" in error["message"]
    assert "force=true" in error["message"]
    assert all(p["name"] != "Eileen" for p in client.get("/api/persons").json["persons"])


def test_api_enrolls_the_box_and_says_which(client: FlaskClient) -> None:
    created = client.post("/api/persons", data={"name": "Eileen A", "keep_original": "true",
                                                "images": [upload(ASTRONAUT, "eileen.png")]})
    assert created.status_code == 201, created.json
    (image,) = created.json["person"]["images"]
    x, y, w, h = image["box"]
    assert (image["width"], image["height"]) == (w, h) and image["detection_score"] >= 0.5
    assert (image["upload_width"], image["upload_height"]) == (512, 512)
    crop = decode_image(client.get(image["url"]).data)
    np.testing.assert_array_equal(crop, ASTRONAUT[y:y + h, x:x + w])
    original = client.get(image["original_url"])
    drawn = decode_image(original.data)  # the upload, with a band above it for the box's tag where no room is left
    assert original.status_code == 200 and drawn.shape[0] >= 512 and drawn.shape[1:] == (512, 3)
    assert created.json["same_name"] == []
    forced = client.post(f"/api/persons/{created.json['person']['id']}/images",
                         data={"force": "true", "images": [upload(PAIR, "pair.png")]})
    assert forced.status_code == 201, forced.json
    (whole,) = forced.json["images"]
    assert whole["box"] is None and (whole["width"], whole["height"]) == (1024, 512)
    assert whole["original_url"] is None
    bad = client.post("/api/persons", data={"name": "X", "force": "perhaps", "images": [upload(WALL, "w.png")]})
    assert bad.status_code == 400 and "force must be true or false" in bad.json["error"]["message"]


def test_api_says_when_nobody_is_detected(client: FlaskClient) -> None:
    client.post("/api/persons", data={"name": "Eileen B", "images": [upload(ASTRONAUT, "b.png")]})
    nobody = client.post("/api/search", data={"image": upload(WALL, "wall.png")}).json
    assert nobody["detected"] == 0 and nobody["detector_id"] == "ssdlite-mobilenetv2-person-300"
    (result,) = nobody["results"]
    assert result["whole_image"] is True and result["bbox"] is None and result["detection_score"] is None
    found = client.post("/api/search", data={"image": upload(PAIR, "pair.png")}).json
    assert found["detected"] == 2 and [r["whole_image"] for r in found["results"]] == [False, False]


def test_page_shows_the_box_taken_and_warns_of_a_known_name(client: FlaskClient) -> None:
    token = form_token(client)
    first = client.post("/persons", data={"csrf_token": token, "name": "Pat", "keep_original": "on",
                                          "images": [upload(ASTRONAUT, "pat.png")]}, follow_redirects=True)
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "pat.png: the person in box [" in html
    assert "of the 512×512 upload" in html and "with the box</a>" in html
    second = client.post("/persons", data={"csrf_token": token, "name": "pat",
                                           "images": [upload(ASTRONAUT[:, ::-1].copy(), "pat2.png")]},
                         follow_redirects=True)
    assert "Another person is already named pat: person " in second.get_data(as_text=True)
    refused = client.post("/persons", data={"csrf_token": token, "name": "Nobody",
                                            "images": [upload(WALL, "wall.png")]})
    assert refused.status_code == 400 and "wall.png: no person found" in refused.get_data(as_text=True)
    forced = client.post("/persons", data={"csrf_token": token, "name": "Wall", "force": "true",
                                           "images": [upload(WALL, "wall.png")]}, follow_redirects=True)
    assert "wall.png: the whole image" in forced.get_data(as_text=True)
    page = client.post("/search", data={"csrf_token": token, "image": upload(WALL, "still.png")},
                       follow_redirects=True)
    assert "Nobody was detected in this still" in page.get_data(as_text=True)


@pytest.mark.slow  # each command builds the app and loads the detector again
def test_cli_refuses_and_forces(runner: CliRunner, cli_env: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REID_DETECTOR", "ssdlite")
    wall, eileen = tmp_path / "wall.png", tmp_path / "eileen.png"
    wall.write_bytes(png(WALL))
    eileen.write_bytes(png(ASTRONAUT))
    refused = runner.invoke(cli, ["enroll", "--name", "Nobody", str(wall)])
    assert refused.exit_code == 1 and "wall.png: no person found" in refused.output
    assert "Traceback" not in refused.output
    enrolled = runner.invoke(cli, ["enroll", "--name", "Eileen", str(eileen)])
    assert enrolled.exit_code == 0 and "eileen.png): box [" in enrolled.output
    forced = runner.invoke(cli, ["enroll", "--person-id", "1", "--force", str(wall)])
    assert forced.exit_code == 0 and "wall.png): the whole image" in forced.output
    again = runner.invoke(cli, ["enroll", "--name", "eileen", str(eileen)])
    assert "warning: another person is already named eileen: person 1" in again.output
    searched = runner.invoke(cli, ["search", str(wall)])
    assert "0 person(s) detected" in searched.output and "whole image (nobody detected)" in searched.output
