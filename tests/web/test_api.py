"""The JSON API over a real database, real FAISS index and the fake embedder."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from tests.conftest import jpeg_bytes, person_image

pytestmark = pytest.mark.both_databases


def files(*images: tuple[bytes, str]) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(data), name) for data, name in images]


def enroll(client: FlaskClient, name: str, person: int, n: int = 2) -> dict:
    response = client.post("/api/persons", data={
        "name": name, "notes": "seen near gate 3",
        "images": files(*[(jpeg_bytes(person_image(person, v)), f"{person}_{v}.jpg") for v in range(n)])})
    assert response.status_code == 201, response.json
    return response.json


def snapshot(client: FlaskClient, data_dir: Path) -> tuple:
    """What is stored: persons with images, index size, files on disk."""
    persons = client.get("/api/persons").json["persons"]
    details = [client.get(f"/api/persons/{p['id']}").json["person"] for p in persons]
    return (details, client.get("/api/health").json["vectors_indexed"],
            sorted(p.name for p in (data_dir / "images").rglob("*") if p.is_file()))


def test_enroll_list_get(client: FlaskClient) -> None:
    created = enroll(client, "Ann Example", 1, n=3)
    assert created["person"]["name"] == "Ann Example" and len(created["image_ids"]) == 3
    listed = client.get("/api/persons").json["persons"]
    assert [(p["name"], p["image_count"]) for p in listed] == [("Ann Example", 3)]
    person = client.get(f"/api/persons/{created['person']['id']}").json["person"]
    assert person["notes"] == "seen near gate 3"
    assert [i["id"] for i in person["images"]] == created["image_ids"]
    thumb = client.get(person["images"][0]["thumbnail"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert client.get(person["images"][0]["url"]).data.startswith(b"\xff\xd8")


def test_search_returns_ranked_persons_with_threshold_and_margin(client: FlaskClient) -> None:
    ids = {p: enroll(client, f"person {p}", p)["person"]["id"] for p in range(1, 5)}
    query = jpeg_bytes(person_image(2, variant=7))
    body = client.post("/api/search", data={"image": (io.BytesIO(query), "still.jpg"),
                                            "top_k": "3"}).json
    assert body["threshold"] == 0.8 and body["top_k"] == 3
    (result,) = body["results"]
    assert result["bbox"] is None
    top = result["matches"][0]
    assert top["person_id"] == ids[2] and top["match"] is True and top["name"] == "person 2"
    assert len(result["matches"]) == 3 and not any(m["match"] for m in result["matches"][1:])
    assert result["margin"] == pytest.approx(top["score"] - result["matches"][1]["score"], abs=1e-5)
    strict = client.post("/api/search", data={"image": (io.BytesIO(query), "still.jpg"),
                                              "threshold": "0.9999"}).json
    assert strict["threshold"] == 0.9999 and not strict["results"][0]["matches"][0]["match"]


def test_stored_search_and_idempotent_enroll(client: FlaskClient) -> None:
    def enroll_once() -> Any:
        return client.post("/api/persons", headers={"Idempotency-Key": "batch-17:ann"}, data={
            "name": "Ann", "images": files((jpeg_bytes(person_image(1, 0)), "a.jpg"))})

    first, again = enroll_once(), enroll_once()
    assert (first.status_code, again.status_code) == (201, 200) and again.json == first.json
    assert len(client.get("/api/persons").json["persons"]) == 1
    bad = client.post("/api/persons", headers={"Idempotency-Key": "x" * 65}, data={"name": "B"})
    assert bad.status_code == 400 and "idempotency key" in bad.json["error"]["message"]

    searched = client.post("/api/search", data={"image": (io.BytesIO(jpeg_bytes(person_image(1, 3))), "q.jpg")}).json
    assert searched["url"] == f"/api/searches/{searched['search_id']}"
    assert searched["page_url"] == f"/searches/{searched['search_id']}"
    again = client.get(searched["url"], query_string={"threshold": "0.9999"}).json
    assert again["search_id"] == searched["search_id"] and again["threshold"] == 0.9999
    assert again["results"][0]["matches"][0]["person_id"] == searched["results"][0]["matches"][0]["person_id"]
    assert not again["results"][0]["matches"][0]["match"] and searched["results"][0]["matches"][0]["match"]
    missing = client.get("/api/searches/999")
    assert missing.status_code == 404 and missing.json["error"]["message"] == "no search has id 999"


def test_add_images_and_delete_image(client: FlaskClient, data_dir: Path) -> None:
    person_id = enroll(client, "Bo", 1, n=1)["person"]["id"]
    added = client.post(f"/api/persons/{person_id}/images", data={
        "images": files((jpeg_bytes(person_image(1, 5)), "more.jpg"))})
    assert added.status_code == 201
    image_id = added.json["image_ids"][0]
    deleted = client.delete(f"/api/images/{image_id}")
    assert deleted.json["deleted"] == {"persons": 0, "images": [image_id], "vectors": 1, "files": 1,
                                       "searches": 0}
    assert client.get(f"/api/images/{image_id}/thumb").status_code == 404
    assert len(client.get(f"/api/persons/{person_id}").json["person"]["images"]) == 1


def test_delete_person_removes_everything(client: FlaskClient, data_dir: Path) -> None:
    gone = enroll(client, "Gone", 1)["person"]["id"]
    enroll(client, "Kept", 2)
    assert client.delete(f"/api/persons/{gone}").json["deleted"]["files"] == 2
    assert client.get(f"/api/persons/{gone}").status_code == 404
    body = client.post("/api/search", data={"image": (io.BytesIO(jpeg_bytes(person_image(1, 0))), "q.jpg"),
                                            "top_k": "10"}).json
    assert [m["name"] for m in body["results"][0]["matches"]] == ["Kept"]
    assert len(list((data_dir / "images").rglob("*.jpg"))) == 2


def tiny_png() -> bytes:
    return cv2.imencode(".png", np.zeros((20, 10, 3), np.uint8))[1].tobytes()


BAD_ENROLLS = {  # case -> (form factory, status, message); files are fresh per test
    "not an image": (lambda: {"name": "X", "images": files((b"hello, world", "notes.txt"))}, 400, "not an image"),
    "truncated jpeg": (lambda: {"name": "X", "images": files((jpeg_bytes(person_image(9))[:-200], "cut.jpg"))},
                       400, "truncated"),
    "empty upload": (lambda: {"name": "X", "images": files((b"", "empty.jpg"))}, 400, "empty"),
    "no file": (lambda: {"name": "X"}, 400, "at least one image"),
    "missing name": (lambda: {"images": files((jpeg_bytes(person_image(9)), "a.jpg"))}, 400, "name is required"),
    "too small": (lambda: {"name": "X", "images": files((tiny_png(), "tiny.png"))}, 400, "too small"),
    "control characters": (lambda: {"name": "a\x00b", "images": files((jpeg_bytes(person_image(9)), "a.jpg"))},
                           400, "control characters"),
}


@pytest.mark.parametrize("case", BAD_ENROLLS)
def test_bad_enroll_is_refused_and_nothing_changes(client: FlaskClient, data_dir: Path, case: str) -> None:
    enroll(client, "Existing", 1)
    before = snapshot(client, data_dir)
    form, status, message = BAD_ENROLLS[case]
    response = client.post("/api/persons", data=form())
    assert response.status_code == status
    assert message in response.json["error"]["message"]
    assert response.json["error"]["code"]
    assert snapshot(client, data_dir) == before


@pytest.mark.parametrize(("fields", "message"), [
    ({"top_k": "ten"}, "top_k must be an integer"),
    ({"top_k": "0"}, "top_k must be between 1 and 100"),
    ({"top_k": "1000"}, "top_k must be between 1 and 100"),
    ({"threshold": "high"}, "threshold must be a number"),
    ({"threshold": "nan"}, "finite"),
    ({"threshold": "inf"}, "finite"),
    ({"threshold": "2"}, "between -1 and 1"),
])
def test_bad_search_parameters(client: FlaskClient, fields: dict, message: str) -> None:
    data = {"image": (io.BytesIO(jpeg_bytes(person_image(1))), "q.jpg"), **fields}
    response = client.post("/api/search", data=data)
    assert response.status_code == 400 and message in response.json["error"]["message"]


def test_search_without_image_or_with_two(client: FlaskClient) -> None:
    assert "exactly one image" in client.post("/api/search", data={}).json["error"]["message"]
    two = files((jpeg_bytes(person_image(1)), "a.jpg"), (jpeg_bytes(person_image(2)), "b.jpg"))
    assert client.post("/api/search", data={"image": two}).status_code == 400


@pytest.mark.parametrize(("method", "url"), [
    ("get", "/api/persons/404"), ("delete", "/api/persons/404"), ("delete", "/api/images/404"),
    ("post", "/api/persons/404/images"), ("get", "/api/nowhere"),
])
def test_unknown_ids_are_404_json(client: FlaskClient, method: str, url: str) -> None:
    data = {"images": files((jpeg_bytes(person_image(1)), "a.jpg"))} if method == "post" else None
    response = getattr(client, method)(url, data=data)
    assert response.status_code == 404 and response.json["error"]["code"]


def test_upload_over_the_limit_is_413(app, client: FlaskClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = client.post("/api/persons", data={"name": "Big", "images": files((b"\xff" * 20_000, "big.jpg"))})
    assert response.status_code == 413 and "limit" in response.json["error"]["message"]


def test_health(client: FlaskClient) -> None:
    enroll(client, "A", 1)
    body = client.get("/api/health").json
    assert body == {"status": "ok", "model_id": "test-thumbnail-v1", "threshold": 0.8,
                    "persons": 1, "images": 2, "vectors_indexed": 2}
