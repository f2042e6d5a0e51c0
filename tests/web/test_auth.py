"""Who may do what, over HTTP: keys and roles on the API, sign-in and CSRF on the pages, headers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gallery import access
from tests.conftest import form_token, jpeg_bytes, person_image
from web import auth
from web.cli import cli
from web.commands.access import refuse_open_network

PASSWORD = "correct horse battery staple"

# (method, path, role needed): every endpoint with personal data, API and pages.
API = [("POST", "/api/persons", "operator"), ("GET", "/api/persons", "viewer"),
       ("GET", "/api/persons/1", "viewer"), ("POST", "/api/persons/1/images", "operator"),
       ("DELETE", "/api/persons/1", "admin"), ("DELETE", "/api/images/1", "admin"),
       ("POST", "/api/search", "viewer"), ("GET", "/api/searches/1", "viewer"),
       ("POST", "/api/persons/1/sightings/1/review", "operator")]
PAGES = [("GET", "/", "viewer"), ("GET", "/search", "viewer"), ("POST", "/search", "viewer"),
         ("GET", "/persons", "viewer"),
         ("POST", "/persons", "operator"), ("GET", "/persons/1", "viewer"),
         ("POST", "/persons/1/images", "operator"), ("POST", "/persons/1/delete", "admin"),
         ("POST", "/images/1/delete", "admin"), ("GET", "/images/1", "viewer"),
         ("GET", "/images/1/thumb", "viewer"), ("GET", "/images/1/original", "operator"),
         ("GET", "/sightings/crops/1", "viewer"),
         ("GET", "/sightings/1/frame", "viewer"), ("GET", "/searches/1", "viewer"),
         ("GET", "/searches/1/still", "viewer"), ("GET", "/sightings/1", "viewer"),
         ("GET", "/sightings/1/clip", "viewer"),
         ("POST", "/persons/1/sightings/1/review", "operator")]


def make_key(app: Flask, role: str, name: str = "client") -> str:
    with app.extensions["reid"].sessions() as session:
        return access.create_key(session, role, name, actor="test")[1]


def make_user(app: Flask, username: str, role: str) -> None:
    with app.extensions["reid"].sessions() as session:
        access.create_user(session, username, PASSWORD, role, actor="test")


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD,
            next_url: str = "/") -> TestResponse:
    return client.post("/login", data={"csrf_token": form_token(client), "username": username,
                                       "password": password, "next": next_url})


def enroll(client: FlaskClient, key: str) -> int:
    response = client.post("/api/persons", headers={"X-API-Key": key}, data={
        "name": "Ann", "images": [(io.BytesIO(jpeg_bytes(person_image(1))), "a.jpg")]})
    assert response.status_code == 201, response.json
    return response.json["person"]["id"]


def test_every_view_declares_who_may_use_it(app: Flask) -> None:
    declared = {rule.endpoint: getattr(app.view_functions[rule.endpoint], "required_role", None)
                for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert None not in declared.values(), declared
    assert {e for e, role in declared.items() if role == auth.PUBLIC} == {"api.health", "auth.login",
                                                                           "auth.logout"}
    checked = {(m, re.sub(r"\d+", "1", p)) for m, p, _ in API + PAGES}
    for rule in app.url_map.iter_rules():
        if declared.get(rule.endpoint) not in (None, auth.PUBLIC):
            path = re.sub(r"<int:\w+>", "1", rule.rule)
            assert any((m, path) in checked for m in rule.methods or ()), f"{rule} is not in the matrix"


def test_api_role_matrix(app: Flask, client: FlaskClient) -> None:
    keys = {role: make_key(app, role, f"{role}-client") for role in access.ROLES}
    for method, path, needed in API:
        for headers, expected in [({}, 401), ({"X-API-Key": "reid_wrongwrongwrongwrong"}, 401),
                                  ({"X-API-Key": keys["viewer"][:-2]}, 401)]:
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == expected, (method, path, headers)
            assert response.json["error"]["code"] == "unauthorized" and response.json["error"]["message"]
        for role, key in keys.items():
            response = client.open(path, method=method, headers={"X-API-Key": key})
            if access.role_allows(role, needed):
                assert response.status_code not in (401, 403), (method, path, role, response.json)
            else:
                assert response.status_code == 403, (method, path, role)
                assert response.json["error"]["code"] == "forbidden"
                assert f"needs the {needed} role" in response.json["error"]["message"]
    health = client.get("/api/health")  # open: counts and the model's id only
    assert health.status_code == 200 and "persons" in health.json


def test_pages_role_matrix_with_keys(app: Flask, client: FlaskClient) -> None:
    keys = {role: make_key(app, role) for role in access.ROLES}
    for method, path, needed in PAGES:
        anonymous = client.open(path, method=method)
        if method == "GET":
            assert anonymous.status_code == 302 and "/login?next=" in anonymous.location
        else:
            assert anonymous.status_code == 401
        for role, key in keys.items():
            response = client.open(path, method=method, headers={"X-API-Key": key})
            assert (response.status_code == 403) != access.role_allows(role, needed), (method, path, role)
            assert response.status_code != 401


def test_revoked_key_is_refused_at_once(app: Flask, client: FlaskClient) -> None:
    key = make_key(app, "viewer")
    assert client.get("/api/persons", headers={"X-API-Key": key}).status_code == 200
    with app.extensions["reid"].sessions() as session:
        (row,) = access.list_keys(session)
        access.revoke_key(session, row.id, actor="test")
    refused = client.get("/api/persons", headers={"X-API-Key": key})
    assert refused.status_code == 401 and "revoked" in refused.json["error"]["message"]


def test_session_cookie_is_not_accepted_by_the_api(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    assert sign_in(client, "alice").status_code == 303
    assert client.get("/persons").status_code == 200
    assert client.get("/api/persons").status_code == 401  # the API takes keys only: no CSRF there


def test_login_logout_and_the_header(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "operator")
    assert client.get("/persons").location.endswith("/login?next=/persons")
    failed = sign_in(client, "alice", "wrong password!", next_url="/persons")
    assert failed.status_code == 401 and "Unknown user or wrong password." in failed.get_data(as_text=True)
    assert sign_in(client, "mallory").status_code == 401
    signed_in = sign_in(client, "alice", next_url="/persons")
    assert signed_in.status_code == 303 and signed_in.location == "/persons"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    html = client.get("/persons").get_data(as_text=True)
    assert "alice" in html and "(operator)" in html and "Log out" in html
    assert 'name="csrf_token"' in html and "Enroll a person" in html
    assert client.get("/logout").status_code == 405  # only a form (with its token) signs out
    out = client.post("/logout", data={"csrf_token": form_token(client)})
    assert out.status_code == 303 and out.location.endswith("/login")
    assert client.get("/persons").status_code == 302


def test_login_never_redirects_off_site(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "viewer")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        assert sign_in(client, "alice", next_url=target).location == "/", target


def test_roles_show_and_refuse_the_forms(app: Flask, client: FlaskClient) -> None:
    person_id = enroll(client, make_key(app, "admin"))
    make_user(app, "victor", "viewer")
    sign_in(client, "victor")
    html = client.get(f"/persons/{person_id}").get_data(as_text=True)
    assert "Ann" in html and "Delete this person" not in html and "Add images" not in html
    assert "Enroll a person" not in client.get("/persons").get_data(as_text=True)
    refused = client.post(f"/persons/{person_id}/delete", data={"csrf_token": form_token(client)})
    assert refused.status_code == 403 and "needs the admin role" in refused.get_data(as_text=True)


def test_disabled_user_is_signed_out(app: Flask, client: FlaskClient) -> None:
    make_user(app, "dave", "viewer")
    sign_in(client, "dave")
    assert client.get("/persons").status_code == 200
    with app.extensions["reid"].sessions() as session:
        access.disable_user(session, "dave", actor="test")
    assert client.get("/persons").status_code == 302
    assert sign_in(client, "dave").status_code == 401


def test_forms_without_the_csrf_token_are_refused(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "admin")
    person_id = enroll(client, make_key(app, "admin"))
    sign_in(client, "alice")
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"/persons/{person_id}/delete", data=data)
        assert refused.status_code == 403 and "reload the page" in refused.get_data(as_text=True)
    login_without = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert login_without.status_code == 403
    viewer = {"X-API-Key": make_key(app, "viewer")}
    assert client.get(f"/api/persons/{person_id}", headers=viewer).status_code == 200
    deleted = client.post(f"/persons/{person_id}/delete", data={"csrf_token": form_token(client)})
    assert deleted.status_code == 303


def test_open_mode_csrf_and_cross_site_requests(client: FlaskClient) -> None:
    page = client.post("/persons", data={"name": "X"})
    assert page.status_code == 403  # open mode too: a page on another site could post to localhost
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"},
                    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"}):
        refused = client.post("/api/search", headers=headers)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "cross_site_request"
    same = client.post("/api/search", headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 400  # past the guard, refused for the missing image


def test_api_key_clients_need_no_csrf_token(app: Flask, client: FlaskClient) -> None:
    key = make_key(app, "admin")
    person_id = enroll(client, key)
    assert client.post(f"/persons/{person_id}/delete", headers={"X-API-Key": key}).status_code == 303


def test_security_headers_on_every_response(app: Flask, client: FlaskClient) -> None:
    make_user(app, "alice", "viewer")
    responses = [client.get("/login"), client.get("/api/health"), client.get("/api/persons"),
                 client.get("/persons"), client.get("/no/such/page"), client.get("/static/style.css"),
                 client.get("/static/app.js")]
    for response in responses:
        assert response.headers["Content-Security-Policy"] == auth.CONTENT_SECURITY_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = auth.CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in csp and "img-src 'self' data:" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_pages_hold_no_inline_script_or_style(app: Flask) -> None:
    templates = Path(app.root_path) / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)|\son\w+=|style=|javascript:", text), template.name


def test_open_mode_serves_this_machine_only(client: FlaskClient) -> None:
    remote = client.get("/api/persons", environ_base={"REMOTE_ADDR": "192.168.1.20"})
    assert remote.status_code == 403 and remote.json["error"]["code"] == "open_mode"
    assert client.get("/api/persons", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/api/health", environ_base={"REMOTE_ADDR": "192.168.1.20"}).status_code == 200


def test_open_mode_banner(app: Flask, client: FlaskClient) -> None:
    banner = "open mode: anyone on this machine can use it"
    assert banner in client.get("/").get_data(as_text=True)
    make_user(app, "alice", "viewer")
    sign_in(client, "alice")
    assert banner not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("LOCALHOST", True),
    ("127.0.0.2", True), ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.5", False),
    ("example.com", False), ("localhost.example.com", False)])
def test_local_hosts(host: str, local: bool) -> None:
    assert auth.is_local_host(host) is local
    assert (auth.open_mode_refusal(host, auth_enabled=False) is None) is local
    assert auth.open_mode_refusal(host, auth_enabled=True) is None


def test_serve_refuses_the_network_in_open_mode(runner: CliRunner, cli_env: Path, app: Flask) -> None:
    refused = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "5999"])
    assert refused.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in refused.output and "reid users create" in refused.output
    assert "serving on" not in refused.output
    make_user(app, "alice", "admin")
    with app.app_context():
        refuse_open_network("0.0.0.0")  # a user exists: no refusal
