"""Property-based fuzzing of the JSON API: whatever arrives, the answer is never a 5xx, every
error has the one JSON shape, and the gallery stays in step (rows == index ids == vectors,
every stored file referenced).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import cv2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import person_image
from tests.hardening.conftest import check_invariants
from tests.hardening.corpus import jpeg_claiming, png_claiming

pytestmark = [pytest.mark.both_databases, pytest.mark.slow]  # 60 random requests, each checked


@functools.cache
def sample_images() -> list[bytes]:
    """Small valid images in every accepted format, to enroll as they are or to damage."""
    samples = [cv2.imencode(ext, person_image(p, v))[1].tobytes()
               for p, v in [(11, 0), (11, 1), (12, 0)] for ext in (".jpg", ".png")]
    samples += [cv2.imencode(ext, person_image(13))[1].tobytes() for ext in (".bmp", ".webp", ".gif")]
    return [*samples, png_claiming(30_000, 30_000), jpeg_claiming(9_000, 9_000)]


@st.composite
def file_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid image as it is, truncated, with bytes changed, or with bytes inserted."""
    how = draw(st.sampled_from(["as is", "truncated", "changed", "inserted", "random"]))
    if how == "random":
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(sample_images())))
    at = draw(st.integers(0, len(data) - 1))
    if how == "truncated":
        del data[at:]
    elif how == "changed":
        chunk = draw(st.binary(min_size=1, max_size=16))
        data[at:at + len(chunk)] = chunk
    elif how == "inserted":
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


texts = st.one_of(st.text(min_size=1, max_size=250), st.none(),
                  st.sampled_from(["", " ", "x" * 201, "\x00", "../../x", "<script>alert(1)</script>"]))
numbers = st.one_of(st.none(), st.integers(-5, 120).map(str), st.text(max_size=20), st.integers().map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(str),
                    st.sampled_from(["nan", "-inf", "1e400", "0", "1", "5", "0.5", "-1", "100", "101"]))


@st.composite
def uploads(draw: st.DrawFn) -> list[tuple[bytes, str]]:
    """One to four files; now and then none, or around MAX_FILES (50) of them."""
    how = draw(st.sampled_from(["some", "none", "many"]))
    if how == "many":
        return [(b"x", f"{i}.jpg") for i in range(draw(st.integers(49, 53)))]
    names = st.one_of(st.text(min_size=1, max_size=30), st.just(""))
    return draw(st.lists(st.tuples(file_bytes(), names), min_size=how == "some", max_size=4))

ids = st.one_of(st.integers(1, 8), st.integers(0, 10**25))


@st.composite
def api_request(draw: st.DrawFn) -> tuple[str, str, dict]:
    """A method, a URL and the test client's keyword arguments."""
    kind = draw(st.sampled_from(["enroll", "search", "add", "enroll", "search", "get", "delete",
                                 "delete image", "json"]))
    if kind in ("get", "delete", "delete image"):
        url = f"/api/{'images' if kind == 'delete image' else 'persons'}/{draw(ids)}"
        return ("GET" if kind == "get" else "DELETE"), url, {}
    if kind == "json":
        url = draw(st.sampled_from(["/api/persons", "/api/search", "/api/persons/1/images"]))
        return "POST", url, {"json": {"name": draw(texts), "top_k": draw(numbers)}}
    files = [(io.BytesIO(data), name) for data, name in draw(uploads())]
    fields = {"name": draw(texts), "notes": draw(texts), "top_k": draw(numbers), "threshold": draw(numbers)}
    form = {key: value for key, value in fields.items() if value is not None}
    url = {"enroll": "/api/persons", "add": f"/api/persons/{draw(ids)}/images", "search": "/api/search"}[kind]
    form["image" if kind == "search" else "images"] = files
    return "POST", url, {"data": form, "content_type": "multipart/form-data"}


def test_api_never_fails_and_the_gallery_stays_in_step(app: Flask, client: FlaskClient, data_dir: Path,
                                                       seeded: int) -> None:
    seen: dict[int, int] = {}

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(request=api_request())
    def one_request(request: tuple[str, str, dict]) -> None:
        method, url, kwargs = request
        response = client.open(url, method=method, **kwargs)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, response.get_data(as_text=True)[:300]
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert set(error) == {"code", "message"} and error["code"] and error["message"]
        check_invariants(app, data_dir)

    one_request()
    assert client.get("/api/health").status_code == 200
    assert any(status < 300 for status in seen) and any(status >= 400 for status in seen), seen
