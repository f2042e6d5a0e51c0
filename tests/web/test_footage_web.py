"""Footage through the CLI, the API and the pages."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import form_token, jpeg_bytes
from tests.footage.conftest import FRAMES, WALKERS
from tests.footage.synthetic import pattern, write_video
from web import create_app
from web.cli import cli

ENV = {"REID_DETECTOR": "tests.footage.synthetic:ColourDetector",
       "REID_EMBEDDER": "tests.conftest:ThumbnailEmbedder", "REID_MATCH_THRESHOLD": "0.9"}


@pytest.fixture
def indexed(data_dir: Path, database_url: str, tmp_path: Path, runner: CliRunner,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {**ENV, "REID_DATA_DIR": str(data_dir), "REID_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "recordings" / "lobby"
    folder.mkdir(parents=True)
    write_video(folder / "lobby_2026-11-27_21-00-00.avi", WALKERS, FRAMES)
    first = runner.invoke(cli, ["index-footage", str(tmp_path / "recordings"), "--workers", "1", "--fps", "5"])
    assert first.exit_code == 0, first.output
    assert "1 found, 1 indexed" in first.output and "2 tracks" in first.output, first.output[-600:]
    return data_dir


def test_rerun_skips_and_bad_paths_are_refused(indexed: Path, runner: CliRunner, tmp_path: Path) -> None:
    again = runner.invoke(cli, ["index-footage", str(tmp_path / "recordings")])
    assert again.exit_code == 0 and "1 already indexed" in again.output
    text = tmp_path / "notes.txt"
    text.write_text("no video")
    refused = runner.invoke(cli, ["index-footage", str(text)])
    assert refused.exit_code == 1 and "is not a video OpenCV can open" in refused.output
    missing = runner.invoke(cli, ["index-footage", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_search_api_and_pages_show_sightings(indexed: Path) -> None:
    client = create_app().test_client()
    still = {"image": (io.BytesIO(jpeg_bytes(pattern(WALKERS[0].pattern))), "still.jpg")}
    body = client.post("/api/search", data=still).json
    (result,) = body["results"]
    (sighting,) = result["sightings"]
    assert sighting["camera"] == "lobby" and sighting["start"].startswith("2026-11-27T21:00:0")
    assert set(sighting) >= {"camera", "video", "start", "end", "frame", "bbox", "score", "thumbnail"}
    assert client.get(sighting["thumbnail"]).mimetype == "image/jpeg"
    assert client.get(sighting["frame_url"]).data.startswith(b"\xff\xd8")

    still = {"image": (io.BytesIO(jpeg_bytes(pattern(WALKERS[0].pattern))), "still.jpg")}
    html = client.post("/search", data={**still, "csrf_token": form_token(client)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Seen in footage" in html and 'class="lane"' in html and ">lobby<" in html
    assert 'class="tick"' in html and "UTC" in html  # a labelled time axis, times with their zone

    enrolled = client.post("/api/persons", data={"name": "Walker", "images": [
        (io.BytesIO(jpeg_bytes(pattern(WALKERS[0].pattern))), "w.jpg")]}).json
    person = client.get(f"/api/persons/{enrolled['person']['id']}").json["person"]
    assert [s["camera"] for s in person["sightings"]] == ["lobby"]
    page = client.get(f"/persons/{enrolled['person']['id']}").get_data(as_text=True)
    assert "Seen in footage <span class=\"muted\">(1)</span>" in page


def test_sightings_are_reviewed_on_their_frame_page(indexed: Path) -> None:
    client = create_app().test_client()
    token = form_token(client)
    person_id = client.post("/api/persons", data={"name": "Walker", "images": [
        (io.BytesIO(jpeg_bytes(pattern(WALKERS[0].pattern))), "w.jpg")]}).json["person"]["id"]
    page = client.get(f"/persons/{person_id}?order=score").get_data(as_text=True)
    assert "lobby_2026-11-27_21-00-00.avi" in page and str(indexed.parent) not in page  # no server paths
    (sighting,) = client.get(f"/api/persons/{person_id}").json["person"]["sightings"]
    frame_page = client.get(f"/sightings/{sighting['sighting_id']}?person={person_id}").get_data(as_text=True)
    assert all(text in frame_page for text in (
        "<dd>lobby</dd>", "<dd>lobby_2026-11-27_21-00-00.avi</dd>", " UTC", "1 of 1", "Back to Walker",
        f'src="/sightings/{sighting["sighting_id"]}/frame"', "Not this person"))

    clip = client.get(f"/sightings/{sighting['sighting_id']}/clip")
    assert clip.mimetype == "video/webm" and clip.data[:4] == b"\x1aE\xdf\xa3"

    review = f"/persons/{person_id}/sightings/{sighting['sighting_id']}/review"
    rejected = client.post(review, data={"csrf_token": token, "verdict": "reject", "next": f"/persons/{person_id}"})
    assert rejected.status_code == 303 and rejected.headers["Location"] == f"/persons/{person_id}"
    assert client.get(f"/api/persons/{person_id}").json["person"]["sightings"] == []
    assert client.post(review, data={"csrf_token": token, "verdict": "maybe"}).status_code == 400
    offsite = client.post(review, data={"csrf_token": token, "verdict": "confirm", "next": "//evil.example/"})
    assert offsite.headers["Location"] == f"/persons/{person_id}"
    confirmed = client.post(f"/api{review}", data={"verdict": "confirm"}).json
    assert confirmed == {"person_id": person_id, "sighting_id": sighting["sighting_id"], "confirmed": True}
    (shown,) = client.get(f"/api/persons/{person_id}").json["person"]["sightings"]
    assert shown["confirmed"] is True


def test_purge_footage(indexed: Path, runner: CliRunner) -> None:
    kept = runner.invoke(cli, ["purge-footage", "--older-than", "36500"])
    assert '"videos": 0' in kept.output
    purged = runner.invoke(cli, ["purge-footage", "--older-than", "0"])
    assert purged.exit_code == 0 and '"videos": 1, "sightings": 2' in purged.output
    assert "purged 0 stored search(es) older than 7 day(s)" in purged.output
    assert runner.invoke(cli, ["purge-footage", "--older-than", "-1"]).exit_code == 2
