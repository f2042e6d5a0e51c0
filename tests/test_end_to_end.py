"""End to end with the real default embedder and the real SSDLite person detector on real photographs.

(pedestrian-adas, the default detector when its files are there, is made for CCTV views of
walking people: on a close-up portrait it boxes parts of the person.)
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import cv2
import pytest
from flask.testing import FlaskClient
from skimage import data as skimage_data

from gallery.db import sqlite_url
from gallery.schema import upgrade
from tests.conftest import form_token
from web import create_app


def jpeg(rgb) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    data_dir = tmp_path_factory.mktemp("e2e")
    upgrade(sqlite_url(data_dir / "reid.db"))
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DETECTOR": "ssdlite"})
    yield app.test_client()
    app.extensions["reid"].engine.dispose()


def search(client: FlaskClient, image: bytes) -> dict:
    response = client.post("/api/search", data={"image": (io.BytesIO(image), "still.jpg"), "top_k": "3"})
    assert response.status_code == 200, response.json
    return response.json


def test_detect_enroll_and_find_a_person_in_a_photograph_by_api_and_page(client: FlaskClient) -> None:
    photo = skimage_data.astronaut()                   # one person, 512x512 RGB
    (found,) = search(client, jpeg(photo))["results"]  # empty gallery: boxes but no matches
    x, y, w, h = found["bbox"]
    assert found["matches"] == [] and h > 200 and w > 100

    decoys = {"cat": skimage_data.chelsea(), "coffee": skimage_data.coffee()}
    for name, picture in decoys.items():  # no person in them: refused, unless forced
        data = {"name": name, "images": [(io.BytesIO(jpeg(picture)), "d.jpg")]}
        refused = client.post("/api/persons", data=data)
        assert refused.status_code == 400 and "d.jpg: no person found" in refused.json["error"]["message"]
        data["images"] = [(io.BytesIO(jpeg(picture)), "d.jpg")]
        response = client.post("/api/persons", data={**data, "force": "true"})
        assert response.status_code == 201
    crop = jpeg(photo[y:y + h, x:x + w])
    enrolled = client.post("/api/persons", data={"name": "Eileen", "images": [(io.BytesIO(crop), "crop.jpg")]})
    assert enrolled.status_code == 201

    body = search(client, jpeg(photo))
    (result,) = body["results"]
    assert result["bbox"] == [x, y, w, h]
    best, second = result["matches"][:2]
    assert best["name"] == "Eileen" and best["match"] and best["score"] > 0.95
    assert second["score"] < best["score"] and result["margin"] > 0
    health = client.get("/api/health").json
    assert health["persons"] == 3 and health["vectors_indexed"] == 3
    assert body["model_id"] == health["model_id"]

    html = client.post("/search", data={"image": (io.BytesIO(jpeg(photo)), "s.jpg"), "csrf_token": form_token(client)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Person 1" in html and "Eileen" in html and re.search(r'<img src="/searches/\d+/still"', html)
