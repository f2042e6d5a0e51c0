"""Round-2 attacks on the pages and API (issue 21): hosts, redirects, sessions, sign-in limits, caching."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gallery import access
from gallery.models import utcnow
from tests.conftest import form_token, jpeg_bytes, person_image
from tests.web.test_auth import PASSWORD, make_key, make_user
from web import create_app
from web.cli import cli

EVIL = {"Host": "evil.example:5099", "Origin": "http://evil.example:5099", "Sec-Fetch-Site": "same-origin"}


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD, next_url: str = "/",
            environ: dict | None = None) -> TestResponse:
    """Sign in through the form, from ``environ``'s REMOTE_ADDR (127.0.0.1 by default)."""
    return client.post("/login", environ_base=environ or {}, data={
        "csrf_token": form_token(client), "username": username, "password": password, "next": next_url})


def enroll_form(name: str = "Ann") -> dict:
    return {"name": name, "images": [(io.BytesIO(jpeg_bytes(person_image(1))), "a.jpg")]}


# -- 4. DNS rebinding: allowed hosts ------------------------------------------------------------

def test_open_mode_answers_loopback_host_names_only(client: FlaskClient) -> None:
    enrolled = client.post("/api/persons", headers=EVIL, data=enroll_form())
    assert enrolled.status_code == 400 and enrolled.json["error"]["code"] == "host_not_allowed"
    assert "REID_ALLOWED_HOSTS" in enrolled.json["error"]["message"]
    for path in ("/api/persons", "/api/health", "/", "/static/style.css", "/no-such-page"):
        assert client.get(path, headers={"Host": "evil.example"}).status_code == 400, path
    for host in ("localhost", "localhost:5000", "127.0.0.1:5099", "[::1]:5000", "LOCALHOST"):
        assert client.get("/api/persons", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_setting(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REID_ALLOWED_HOSTS", "reid.example.org, .cams.example.org")
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                      "EMBEDDER": "test-thumbnail", "DETECTOR": "none"})
    client = app.test_client()
    for host, status in [("reid.example.org", 200), ("reid.example.org:8443", 200), ("a.cams.example.org", 200),
                         ("localhost", 400), ("evil.example", 400), ("reid.example.org.evil.example", 400)]:
        assert client.get("/api/health", headers={"Host": host}).status_code == status, host
    app.extensions["reid"].engine.dispose()


def test_with_access_control_any_host_by_default(app: Flask, client: FlaskClient) -> None:
    key = make_key(app, "viewer")
    assert client.get("/api/persons", headers={"Host": "reid.internal:8080", "X-API-Key": key}).status_code == 200


# -- 5, 6. open redirect after sign-in ----------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/%09/evil.example", "/\t/evil.example", "/%0a/evil.example", "/\n/evil.example", "//evil.example",
    "/%2F/evil.example", "/\\evil.example", "/%5Cevil.example", "https://evil.example/", "/%0d%0aSet-Cookie:x=1",
    "javascript:alert(1)", "/\u202e/evil.example", " //evil.example", "evil.example", "/%E2%80%AE/x"])
def test_sign_in_never_redirects_off_site(app: Flask, client: FlaskClient, target: str) -> None:
    make_user(app, "alice", "admin")
    response = sign_in(client, "alice", next_url=target)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert response.headers["Location"] == "/"


def test_sign_in_goes_back_to_the_page_asked_for(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    assert sign_in(client, "alice", next_url="/persons/3?tab=images").headers["Location"] == "/persons/3?tab=images"
    assert client.get("/login?next=%2Fpersons%0a").status_code == 200  # the page itself shows no 500 either


# -- 7. sign-out ends the session on the server -------------------------------------------------

def copied_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_copied_cookie_is_dead_after_sign_out(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    sign_in(client, "alice")
    stolen = copied_cookie(client)
    assert client.post("/logout", data={"csrf_token": form_token(client)}).status_code == 303
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/persons").status_code == 302  # to the sign-in page
    refused = thief.post("/persons/1/delete", data={"csrf_token": "x"})
    assert refused.status_code in (401, 403)


@pytest.mark.parametrize("change", ["disable", "set-password"])
def test_disabling_or_a_new_password_ends_the_sessions(app: Flask, client: FlaskClient, runner: CliRunner,
                                                       cli_env: Path, change: str) -> None:
    make_user(app, "alice", "admin")
    sign_in(client, "alice")
    assert client.get("/persons").status_code == 200
    args = ["users", change, "alice"] + (["--password-stdin"] if change == "set-password" else [])
    result = runner.invoke(cli, args, input="another long password\n")
    assert result.exit_code == 0, result.output
    assert client.get("/persons").status_code == 302
    if change == "set-password":
        assert sign_in(client, "alice", "another long password").status_code == 303
        assert sign_in(app.test_client(), "alice").status_code == 401  # the old password


# -- 8. sign-in rate limits ---------------------------------------------------------------------

def test_sign_in_is_limited_per_address(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    statuses = [sign_in(client, "alice", "wrong password!").status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    right = sign_in(client, "alice")
    assert right.status_code == 429 and 0 < int(right.headers["Retry-After"]) <= 900
    assert "try again in" in right.get_data(as_text=True)
    other = app.test_client()  # another address, same user: still under the per-user limit
    assert sign_in(other, "alice", environ={"REMOTE_ADDR": "10.0.0.9"}).status_code == 303


def test_sign_in_is_limited_per_user_across_addresses(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    for n in range(20):
        sign_in(app.test_client(), "alice", "wrong password!", environ={"REMOTE_ADDR": f"10.0.1.{n}"})
    assert sign_in(client, "alice").status_code == 429
    assert sign_in(client, "bob", "wrong password!").status_code == 401  # other names are not held up


def test_the_limit_lifts_after_the_window(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    for _ in range(10):
        sign_in(client, "alice", "wrong password!")
    assert sign_in(client, "alice").status_code == 429
    from gallery.models import SignInFailure

    with app.extensions["reid"].sessions() as session:
        session.execute(sa.update(SignInFailure).values(at=utcnow() - timedelta(seconds=901)))
        session.commit()
    assert sign_in(client, "alice").status_code == 303


def test_failed_sign_ins_keep_no_attacker_text(app: Flask, client: FlaskClient) -> None:
    junk = "x' OR 1=1 -- " + "A" * 5000
    sign_in(client, junk, "wrong password!")
    with app.extensions["reid"].sessions() as session:
        rows = session.execute(sa.text("SELECT * FROM audit_log")).all()
        failures = session.execute(sa.text("SELECT * FROM sign_in_failures")).all()
    text = repr(rows) + repr(failures)
    assert "OR 1=1" not in text and "AAAA" not in text
    assert any("user:?" in repr(row) for row in rows)


# -- low-risk quirks ----------------------------------------------------------------------------

def test_person_images_are_never_cached(client: FlaskClient) -> None:
    person = client.post("/api/persons", data=enroll_form()).json["person"]
    image_id = person["images"][0]["id"]
    for path in (f"/images/{image_id}", f"/images/{image_id}/thumb"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", path


def test_thumbnails_of_large_images_are_made_once(app: Flask, client: FlaskClient) -> None:
    large = cv2.resize(person_image(3), (2000, 4000), interpolation=cv2.INTER_NEAREST)
    png = cv2.imencode(".png", large)[1].tobytes()
    person = client.post("/api/persons", data={"name": "Big", "images": [(io.BytesIO(png), "big.png")]}).json
    image_id = person["image_ids"][0]
    first = client.get(f"/images/{image_id}/thumb")
    thumbnail = cv2.imdecode(np.frombuffer(first.data, np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail.shape[:2] == (160, 80)
    gallery = app.extensions["reid"].gallery
    made = list(gallery.store.thumbnails.rglob("*.jpg"))
    assert len(made) == 1
    made[0].write_bytes(b"cached")  # the next views read the file: nothing is decoded again
    assert all(client.get(f"/images/{image_id}/thumb").data == b"cached" for _ in range(8))
    client.delete(f"/api/persons/{person['person']['id']}")
    assert not made[0].exists()


def test_bidi_overrides_are_refused_in_names(client: FlaskClient) -> None:
    response = client.post("/api/persons", data=enroll_form("Ann\u202egpj.exe"))
    assert response.status_code == 400 and "bidirectional" in response.json["error"]["message"]


def test_a_large_url_encoded_form_is_refused_as_too_large(client: FlaskClient) -> None:
    body = b"name=" + b"a" * 2_000_000
    response = client.post("/api/persons", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_slash_redirects_do_not_name_the_request_host(app: Flask, client: FlaskClient) -> None:
    key = make_key(app, "viewer")
    response = client.get("/api//persons", headers={"Host": "evil.example", "X-API-Key": key})
    assert response.status_code == 308
    assert response.headers["Location"] == "/api/persons"


def test_sign_in_limits_count_in_the_database(app: Flask) -> None:
    """Every worker process sees the same counts: they live in the database, not in memory."""
    limits, key = access.SignInLimits(per_address=2, per_user=5, window=60), b"k"
    with app.extensions["reid"].sessions() as session:
        for _ in range(2):
            assert access.sign_in_wait(session, "10.1.1.1", "alice", limits, key=key) is None
            access.record_sign_in_failure(session, "10.1.1.1", "alice", limits, key=key)
        session.commit()
    with app.extensions["reid"].sessions() as other:
        assert 0 < (access.sign_in_wait(other, "10.1.1.1", "alice", limits, key=key) or 0) <= 61
        assert access.sign_in_wait(other, "10.1.1.2", "alice", limits, key=key) is None
        assert "alice" not in repr(other.execute(sa.text("SELECT * FROM sign_in_failures")).all())
