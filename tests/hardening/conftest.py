"""What the hardening tests compare: the gallery's rows, index ids and files, before and after."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gallery.models import Embedding, Image, Person
from tests.hardening.corpus import good_jpeg


def gallery_snapshot(app: Flask, root: Path) -> dict:
    """Return the stored rows, the in-memory index's ids, and every file under ``root`` with its hash.

    ``root`` should hold the data dir, so that a file written beside it shows up too. The
    SQLite files are left out: the rows stand for them.
    """
    state = app.extensions["reid"]
    with app.app_context(), state.sessions() as session:
        persons = session.execute(sa.select(Person.id, Person.name, Person.notes).order_by(Person.id)).all()
        images = session.execute(sa.select(Image.id, Image.person_id, Image.sha256, Image.stored_path,
                                           Image.original_name).order_by(Image.id)).all()
        embeddings = session.execute(sa.select(Embedding.id, Embedding.image_id, Embedding.model_id)
                                     .order_by(Embedding.id)).all()
        index_ids = sorted(state.gallery.index(session).ids().tolist())
    files = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("reid.db")}
    return {"persons": persons, "images": images, "embeddings": embeddings,
            "index_ids": index_ids, "files": files}


def check_invariants(app: Flask, data_dir: Path) -> None:
    """Assert the gallery is in step: vectors == index ids, every row's file exists, every file is used."""
    state = app.extensions["reid"]
    gallery = state.gallery
    with app.app_context(), state.sessions() as session:
        vector_ids = session.scalars(sa.select(Embedding.image_id)
                                     .where(Embedding.model_id == gallery.embedder.model_id)).all()
        image_ids = session.scalars(sa.select(Image.id)).all()
        stored = set(session.scalars(sa.select(Image.stored_path)).all())
        index_ids = gallery.index(session).ids().tolist()
    assert sorted(vector_ids) == sorted(index_ids) == sorted(image_ids)
    on_disk = {str(p.relative_to(gallery.store.root)) for p in gallery.store.root.rglob("*") if p.is_file()}
    assert on_disk == stored, "files on disk and rows differ"
    for relative in stored:
        assert gallery.store.path(relative).resolve().is_relative_to(data_dir.resolve())


def assert_json_error(response: TestResponse, status: int, words: str) -> None:
    """Assert a ``status`` answer of shape ``{"error": {"code", "message"}}`` whose message has ``words``."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert words in body["error"]["message"], body["error"]["message"]


def assert_still_serving(client: FlaskClient, name: str = "Existing") -> None:
    """Assert a valid search still works and finds the seeded person."""
    response = client.post("/api/search", data={"image": (io.BytesIO(good_jpeg(1, 7)), "q.jpg")})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.json["results"][0]["matches"][0]["name"] == name


@pytest.fixture
def seeded(client: FlaskClient) -> int:
    """Enroll one person with two images; return their id."""
    response = client.post("/api/persons", data={
        "name": "Existing", "notes": "the gallery is not empty",
        "images": [(io.BytesIO(good_jpeg(1, v)), f"existing_{v}.jpg") for v in range(2)]})
    assert response.status_code == 201, response.json
    assert_still_serving(client)  # its still is stored, as every search's: the snapshots taken later hold it
    return response.json["person"]["id"]
