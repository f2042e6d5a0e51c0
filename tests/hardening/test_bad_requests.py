"""Hostile and broken requests against the real app: each is refused with a 4xx JSON error that
says what was wrong, the server goes on serving, and the gallery (rows, index, files) is unchanged.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.hardening.conftest import (
    assert_json_error,
    assert_still_serving,
    check_invariants,
    gallery_snapshot,
)
from tests.hardening.corpus import BAD_FILES, bad_file, flipped, good_jpeg, png_bomb


def jpeg_file(person: int = 9, name: str = "p.jpg") -> tuple[io.BytesIO, str]:
    return io.BytesIO(good_jpeg(person)), name


def many_files(n: int) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(b"x"), f"{i}.jpg") for i in range(n)]


def fresh(fields: dict[str, Any]) -> dict[str, Any]:
    """Call the fields given as functions, so that each request gets its own open files."""
    return {key: value() if callable(value) else value for key, value in fields.items()}


def enroll_form(**fields: Any) -> Callable[[], dict]:
    """A multipart enrollment: ``name`` X and one good image unless the fields say otherwise."""
    return lambda: {"data": {"name": "X", "images": [jpeg_file()], **fresh(fields)}}


def search_form(**fields: Any) -> Callable[[], dict]:
    return lambda: {"data": {"image": jpeg_file(), **fresh(fields)}}


def body(data: bytes, content_type: str) -> Callable[[], dict]:
    return lambda: {"data": data, "content_type": content_type}


@dataclass(frozen=True)
class Case:
    method: str
    url: str  # "{pid}" stands for the seeded person's id
    request: Callable[[], dict]
    status: int
    words: str


NO_FIELDS: Callable[[], dict] = dict
HUGE_ID = "9" * 30
JSON_BODY = body(json.dumps({"name": "X", "images": ["p.jpg"], "image": "p.jpg"}).encode(), "application/json")
NOT_ALLOWED = "is not allowed on"

CASES: dict[str, Case] = {
    # enrollment: names, notes, files, fields
    "enroll name missing": Case("POST", "/api/persons", lambda: {"data": {"images": [jpeg_file()]}},
                                400, "a name is required"),
    "enroll name empty": Case("POST", "/api/persons", enroll_form(name=""), 400, "a name is required"),
    "enroll name blank": Case("POST", "/api/persons", enroll_form(name=" \t "), 400, "a name is required"),
    "enroll name 10000 chars": Case("POST", "/api/persons", enroll_form(name="x" * 10_000), 400,
                                    "the name is 10000 characters long; at most 200 allowed"),
    "enroll name control chars": Case("POST", "/api/persons", enroll_form(name="Ann\x1b[31m\x07\x00"),
                                      400, "the name must not contain control characters"),
    "enroll name all control chars": Case("POST", "/api/persons",
                                          enroll_form(name="".join(map(chr, range(1, 32))) + "\x7f"),
                                          400, "the name must not contain control characters"),
    "enroll notes with NUL": Case("POST", "/api/persons", enroll_form(notes="seen at\x00gate"), 400,
                                  "the notes must not contain control characters"),
    "enroll notes 10000 chars": Case("POST", "/api/persons", enroll_form(notes="n" * 10_000), 400,
                                     "the notes are 10000 characters long; at most 5000 allowed"),
    "enroll no file": Case("POST", "/api/persons", lambda: {"data": {"name": "X"}}, 400,
                           "at least one image is required"),
    "enroll file in wrong field": Case("POST", "/api/persons",
                                       lambda: {"data": {"name": "X", "photo": jpeg_file()}},
                                       400, "at least one image is required"),
    "enroll images as text field": Case("POST", "/api/persons",
                                        lambda: {"data": {"name": "X", "images": "p.jpg"},
                                                 "content_type": "multipart/form-data"},
                                        400, "at least one image is required"),
    "enroll 51 files": Case("POST", "/api/persons", enroll_form(images=lambda: many_files(51)), 400,
                            "at most 50 files per request, got 51"),
    "enroll 1001 form parts": Case("POST", "/api/persons", enroll_form(images=lambda: many_files(1001)), 413,
                                   "the form has more than 1000 parts"),
    "enroll 600 kB text field": Case("POST", "/api/persons", enroll_form(notes="n" * 600_000), 413,
                                     "a text field larger than 500000 bytes"),
    "enroll body over MAX_CONTENT_LENGTH": Case(
        "POST", "/api/persons", enroll_form(images=lambda: [(io.BytesIO(bytes(32 * 2**20 + 1)), "big.jpg")]),
        413, "the upload is larger than the limit of 33554432 bytes (32 MiB)"),
    "enroll same file twice": Case("POST", "/api/persons", enroll_form(images=lambda: [jpeg_file(), jpeg_file()]),
                                   400, "p.jpg is uploaded twice"),
    "enroll good file and bomb": Case("POST", "/api/persons",
                                      enroll_form(images=lambda: [jpeg_file(), (io.BytesIO(png_bomb()), "b.png")]),
                                      400, "b.png: the image claims 8000 x 6000 pixels"),
    "enroll bad file with path in name": Case(
        "POST", "/api/persons", enroll_form(images=lambda: [(io.BytesIO(b"text"), "../../etc/evil.txt")]),
        400, "evil.txt: the file is not an image"),
    "enroll JSON body": Case("POST", "/api/persons", JSON_BODY, 415,
                             "send the files as multipart/form-data, not application/json"),
    "enroll text/plain body": Case("POST", "/api/persons", body(b"name=X", "text/plain"), 415,
                                   "not text/plain"),
    "enroll multipart without boundary": Case("POST", "/api/persons",
                                              body(b"--x\r\nname=X", "multipart/form-data"),
                                              400, "a name is required"),
    "enroll multipart garbage": Case("POST", "/api/persons",
                                     body(bytes(range(256)) * 8, "multipart/form-data; boundary=zz"),
                                     400, "a name is required"),
    # adding images
    "add images unknown person": Case("POST", "/api/persons/4040/images",
                                      lambda: {"data": {"images": [jpeg_file()]}}, 404, "no person has id 4040"),
    "add images huge id": Case("POST", f"/api/persons/{HUGE_ID}/images",
                               lambda: {"data": {"images": [jpeg_file()]}}, 404, "not found"),
    "add images already enrolled": Case("POST", "/api/persons/{pid}/images",
                                        lambda: {"data": {"images": [(io.BytesIO(good_jpeg(1, 0)), "again.jpg")]}},
                                        409, "again.jpg is already enrolled for person"),
    "add images no file": Case("POST", "/api/persons/{pid}/images", NO_FIELDS, 400,
                               "at least one image is required"),
    "add images JSON body": Case("POST", "/api/persons/{pid}/images", JSON_BODY, 415, "not application/json"),
    # search parameters
    "search no image": Case("POST", "/api/search", NO_FIELDS, 400,
                            "send exactly one image file in the field 'image', got 0"),
    "search two images": Case("POST", "/api/search", search_form(image=lambda: [jpeg_file(1), jpeg_file(2)]), 400,
                              "send exactly one image file in the field 'image', got 2"),
    "search JSON body": Case("POST", "/api/search", JSON_BODY, 415, "not application/json"),
    "search raw jpeg body": Case("POST", "/api/search", body(good_jpeg(9), "image/jpeg"), 415,
                                 "send the files as multipart/form-data, not image/jpeg"),
    **{f"search top_k {label or raw}": Case("POST", "/api/search", search_form(top_k=raw), 400, words)
       for raw, label, words in [("-1", "", "top_k must be between 1 and 100, got -1"),
                                 ("0", "", "between 1 and 100, got 0"), ("101", "", "between 1 and 100, got 101"),
                                 (HUGE_ID, "30 digits", "between 1 and 100"),
                                 ("1e3", "", "top_k must be an integer, got '1e3'"),
                                 ("5.5", "", "must be an integer"), ("nan", "", "must be an integer"),
                                 ("inf", "", "must be an integer"), ("ten", "", "must be an integer, got 'ten'"),
                                 ("9" * 5000, "5000 digits", "must be an integer")]},
    **{f"search threshold {raw}": Case("POST", "/api/search", search_form(threshold=raw), 400, words)
       for raw, words in [("-1.5", "threshold must be a cosine similarity between -1 and 1, got -1.5"),
                          ("2", "between -1 and 1, got 2.0"), ("1e308", "between -1 and 1"),
                          ("nan", "threshold must be a finite number, got 'nan'"), ("inf", "finite"),
                          ("-inf", "finite"), ("1e400", "finite"),
                          ("high", "threshold must be a number, got 'high'")]},
    # unknown ids and routes
    "get unknown person": Case("GET", "/api/persons/4040", NO_FIELDS, 404, "no person has id 4040"),
    "get huge person id": Case("GET", f"/api/persons/{HUGE_ID}", NO_FIELDS, 404, "not found"),
    "get person id 11 digits": Case("GET", f"/api/persons/{10**10}", NO_FIELDS, 404, "not found"),
    "get person id 2**31": Case("GET", f"/api/persons/{2**31}", NO_FIELDS, 404, f"no person has id {2**31}"),
    "delete person id 2**31": Case("DELETE", f"/api/persons/{2**31}", NO_FIELDS, 404, f"no person has id {2**31}"),
    "delete image id 2**31": Case("DELETE", f"/api/images/{2**31}", NO_FIELDS, 404, f"no image has id {2**31}"),
    "delete image id 2**63-1": Case("DELETE", f"/api/images/{2**63 - 1}", NO_FIELDS, 404, "not found"),
    "get person id 0": Case("GET", "/api/persons/0", NO_FIELDS, 404, "no person has id 0"),
    "get negative person id": Case("GET", "/api/persons/-1", NO_FIELDS, 404, "not found"),
    "get person id text": Case("GET", "/api/persons/ann", NO_FIELDS, 404, "not found"),
    "delete unknown person": Case("DELETE", "/api/persons/4040", NO_FIELDS, 404, "no person has id 4040"),
    "delete huge person id": Case("DELETE", f"/api/persons/{HUGE_ID}", NO_FIELDS, 404, "not found"),
    "delete unknown image": Case("DELETE", "/api/images/4040", NO_FIELDS, 404, "no image has id 4040"),
    "delete huge image id": Case("DELETE", f"/api/images/{HUGE_ID}", NO_FIELDS, 404, "not found"),
    "unknown route": Case("GET", "/api/nowhere", NO_FIELDS, 404, "not found"),
    # wrong methods
    "PUT persons": Case("PUT", "/api/persons", enroll_form(), 405, "PUT is not allowed on /api/persons"),
    "DELETE persons": Case("DELETE", "/api/persons", NO_FIELDS, 405, NOT_ALLOWED),
    "PATCH person": Case("PATCH", "/api/persons/{pid}", enroll_form(), 405, NOT_ALLOWED),
    "GET search": Case("GET", "/api/search", NO_FIELDS, 405, "GET is not allowed on /api/search; use"),
    "PUT search": Case("PUT", "/api/search", search_form(), 405, NOT_ALLOWED),
    "POST health": Case("POST", "/api/health", NO_FIELDS, 405, NOT_ALLOWED),
    "GET image": Case("GET", "/api/images/1", NO_FIELDS, 405, "use DELETE"),
    "POST image": Case("POST", "/api/images/1", NO_FIELDS, 405, NOT_ALLOWED),
}

ENDPOINTS = {
    "enroll": ("/api/persons", lambda data, name: {"name": "X", "images": [(io.BytesIO(data), name)]}),
    "add": ("/api/persons/{pid}/images", lambda data, name: {"images": [(io.BytesIO(data), name)]}),
    "search": ("/api/search", lambda data, name: {"image": (io.BytesIO(data), name)}),
}


def run_refused(app: Flask, client: FlaskClient, root: Path, method: str, url: str, kwargs: dict,
                status: int, words: str) -> None:
    """Send one request; assert it is refused as expected and leaves everything as it was."""
    before = gallery_snapshot(app, root)
    response = client.open(url, method=method, **kwargs)
    assert_json_error(response, status, words)
    assert_still_serving(client)
    assert gallery_snapshot(app, root) == before


@pytest.mark.parametrize("case", CASES)
def test_bad_request_is_refused(app: Flask, client: FlaskClient, tmp_path: Path, seeded: int, case: str) -> None:
    spec = CASES[case]
    run_refused(app, client, tmp_path, spec.method, spec.url.format(pid=seeded), spec.request(),
                spec.status, spec.words)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_is_refused(app: Flask, client: FlaskClient, tmp_path: Path, seeded: int,
                             case: str, endpoint: str) -> None:
    data, filename, words = bad_file(case)
    url, form = ENDPOINTS[endpoint]
    run_refused(app, client, tmp_path, "POST", url.format(pid=seeded), {"data": form(data, filename)},
                400, f"{filename}: {words}")


@pytest.mark.parametrize("filename", [
    "../../../../../../tmp/reid-evil.jpg", "..\\..\\..\\reid-evil.jpg", "/etc/cron.d/reid-evil.jpg",
    "a/../../reid-evil.jpg", "..", "reid\x00evil\x1b.jpg", "e" * 10_000 + ".jpg",
])
def test_file_name_with_path_is_stored_sanitised(app: Flask, client: FlaskClient, tmp_path: Path,
                                                 data_dir: Path, seeded: int, filename: str) -> None:
    before = gallery_snapshot(app, tmp_path)
    response = client.post("/api/persons", data={"name": "Path", "images": [jpeg_file(4, filename)]})
    assert response.status_code == 201, response.json
    (image,) = client.get(f"/api/persons/{response.json['person']['id']}").json["person"]["images"]
    stored_name = image["original_name"]
    assert "/" not in stored_name and "\\" not in stored_name and stored_name not in (".", "..")
    assert stored_name.isprintable() and len(stored_name) <= 255
    after = gallery_snapshot(app, tmp_path)
    new_files = set(after["files"]) - set(before["files"])
    sha = image["sha256"]
    assert new_files == {f"data/images/{sha[:2]}/{sha}.jpg"}, new_files
    unchanged = {k: v for k, v in before["files"].items() if not k.startswith("data/index/")}
    assert {k: v for k, v in after["files"].items() if k in unchanged} == unchanged
    assert not (data_dir / "images" / "../../../../../../tmp/reid-evil.jpg").resolve().exists()
    check_invariants(app, data_dir)


def test_damaged_but_decodable_jpeg_is_accepted_consistently(app: Flask, client: FlaskClient,
                                                             data_dir: Path, seeded: int) -> None:
    """libjpeg decodes damaged entropy-coded data with artefacts, as browsers do: that is accepted."""
    data = good_jpeg(5)
    response = client.post("/api/persons", data={"name": "Damaged",
                                                 "images": [(io.BytesIO(flipped(data, len(data) // 2)), "d.jpg")]})
    assert response.status_code == 201, response.json
    assert_still_serving(client)
    check_invariants(app, data_dir)


@pytest.mark.parametrize("url", [f"/images/{HUGE_ID}", f"/images/{HUGE_ID}/thumb", f"/persons/{HUGE_ID}",
                                 f"/sightings/crops/{HUGE_ID}", f"/sightings/{HUGE_ID}/frame",
                                 f"/images/{2**31}", f"/persons/{2**31}", f"/sightings/crops/{2**31}",
                                 f"/sightings/{2**31}/frame"])
def test_pages_with_huge_ids_are_404(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 404


def test_wrong_method_names_the_allowed_ones(client: FlaskClient) -> None:
    response = client.get("/api/search")
    assert response.status_code == 405 and response.headers["Allow"] == "OPTIONS, POST"
