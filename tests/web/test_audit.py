"""The audit log: one entry per accountable action, with who, what and ids only; append-only; export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import cv2
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from gallery import access, audit
from gallery.db import make_engine
from gallery.models import AuditEntry
from tests.conftest import form_token, jpeg_bytes, person_image
from web.cli import cli

pytestmark = pytest.mark.both_databases

PASSWORD = "correct horse battery staple"


def entries(app: Flask) -> list[tuple[str, str, str | None, dict]]:
    with app.extensions["reid"].sessions() as session:
        return [(e.actor, e.action, e.target, audit.entry_dict(e)["details"]) for e in audit.entries(session)]


def make_key(app: Flask, role: str, name: str) -> tuple[int, str]:
    with app.extensions["reid"].sessions() as session:
        row, key = access.create_key(session, role, name, actor="test")
        return row.id, key


def image_file(person: int, variant: int) -> tuple[io.BytesIO, str]:
    return io.BytesIO(jpeg_bytes(person_image(person, variant))), f"{person}_{variant}.jpg"


def test_api_actions_are_audited_with_who_and_ids(app: Flask, client: FlaskClient) -> None:
    ops_id, ops = make_key(app, "operator", "ops-laptop")
    admin_id, admin = make_key(app, "admin", "admin-desk")
    created = client.post("/api/persons", headers={"X-API-Key": ops},
                          data={"name": "Ann", "notes": "gate 3", "images": [image_file(1, 0), image_file(1, 1)]})
    person_id, image_ids = created.json["person"]["id"], created.json["image_ids"]
    added = client.post(f"/api/persons/{person_id}/images", headers={"X-API-Key": ops},
                        data={"images": [image_file(1, 2)]}).json["image_ids"]
    still = jpeg_bytes(person_image(1, 9))
    client.post("/api/search", headers={"X-API-Key": ops},
                data={"image": (io.BytesIO(still), "still.jpg"), "top_k": "3", "threshold": "0.5"})
    client.delete(f"/api/images/{added[0]}", headers={"X-API-Key": admin})
    client.delete(f"/api/persons/{person_id}", headers={"X-API-Key": admin})

    ops_actor, admin_actor = f"key:{ops_id}(ops-laptop)", f"key:{admin_id}(admin-desk)"
    assert entries(app)[2:] == [
        (ops_actor, "enroll", f"person:{person_id}", {"image_ids": image_ids, "source": "upload",
                                                      "boxes": [None, None], "force": False,
                                                      "originals_kept": 0}),
        (ops_actor, "add_images", f"person:{person_id}", {"image_ids": added, "source": "upload",
                                                          "boxes": [None], "force": False,
                                                          "originals_kept": 0}),
        (ops_actor, "save_search", "search:1", {"queries": 1, "detected": 0}),
        (ops_actor, "search", None, {"query_sha256": hashlib.sha256(still).hexdigest(), "threshold": 0.5,
                                     "top_k": 3, "queries": 1, "detected": 0, "person_ids": [person_id],
                                     "sighting_ids": [], "search_id": 1}),
        (admin_actor, "delete_image", f"image:{added[0]}",
         {"person_id": person_id, "vectors": 1, "searches": 0}),
        (admin_actor, "delete_person", f"person:{person_id}",
         {"image_ids": image_ids, "vectors": 2, "links": 0, "searches": 0}),
    ]
    with app.extensions["reid"].sessions() as session:
        times = [e.at for e in audit.entries(session)]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)


def test_pages_and_sign_in_are_audited(app: Flask, client: FlaskClient) -> None:
    client.post("/persons", data={"csrf_token": form_token(client), "name": "Bo", "images": [image_file(2, 0)]})
    with app.extensions["reid"].sessions() as session:
        access.create_user(session, "alice", PASSWORD, "admin", actor="test")
    token = form_token(client)
    client.post("/login", data={"csrf_token": token, "username": "alice", "password": "not the password"})
    client.post("/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    client.post("/persons/1/delete", data={"csrf_token": form_token(client)})
    client.post("/logout", data={"csrf_token": form_token(client)})
    logged = [(actor, action, target) for actor, action, target, _ in entries(app)]
    assert logged == [("open", "enroll", "person:1"), ("test", "user_create", "user:alice"),
                      ("anonymous", "login_failed", "user:alice"), ("user:alice", "login", "user:alice"),
                      ("user:alice", "delete_person", "person:1"), ("user:alice", "logout", "user:alice")]
    assert entries(app)[2][3] == {"remote_addr": "127.0.0.1"}


def test_cli_actions_are_audited(runner: CliRunner, cli_env: Path, app: Flask, tmp_path: Path) -> None:
    me = audit.cli_actor()
    assert me.startswith("cli:")
    images = []
    for v in range(2):
        images.append(tmp_path / f"p{v}.jpg")
        cv2.imwrite(str(images[-1]), person_image(3, v))
    still = tmp_path / "still.jpg"  # not an enrolled image: erasing the person keeps its digest
    cv2.imwrite(str(still), person_image(4, 0))
    (tmp_path / "empty-recordings").mkdir()
    commands = [["enroll", "--name", "Cy", str(images[0])], ["enroll", "--person-id", "1", str(images[1])],
                ["search", str(still)], ["delete-image", "2"], ["delete", "1"],
                ["index-footage", str(tmp_path / "empty-recordings")], ["purge-footage", "--older-than", "30"],
                ["keys", "create", "--role", "viewer", "--name", "cam-box"], ["keys", "revoke", "1"]]
    for args in commands:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    created = runner.invoke(cli, ["users", "create", "bob", "--role", "viewer", "--password-stdin"],
                            input=PASSWORD + "\n")
    assert created.exit_code == 0 and "created user bob (viewer)" in created.output
    prompted = runner.invoke(cli, ["users", "create", "carol", "--role", "admin"],
                             input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert runner.invoke(cli, ["users", "disable", "bob"]).exit_code == 0
    logged = entries(app)
    assert {actor for actor, *_ in logged} == {me}
    assert [action for _, action, _, _ in logged] == [
        "enroll", "add_images", "search", "delete_image", "delete_person", "index_footage", "purge_footage",
        "purge_searches", "key_create", "key_revoke", "user_create", "user_create", "user_disable"]
    by_action = {action: (target, details) for _, action, target, details in logged}
    assert by_action["enroll"] == ("person:1", {"image_ids": [1], "source": "cli", "boxes": [None],
                                                "force": False, "originals_kept": 0})
    assert by_action["search"][1]["query_sha256"] == hashlib.sha256(still.read_bytes()).hexdigest()
    assert by_action["index_footage"][1]["videos_found"] == 0
    assert by_action["purge_footage"][1]["videos"] == 0 and "recorded_before" in by_action["purge_footage"][1]
    assert by_action["purge_searches"][1]["searches"] == 0 and "created_before" in by_action["purge_searches"][1]
    assert by_action["key_create"][0] == "key:1" and by_action["user_disable"][0] == "user:bob"


def test_keys_and_users_commands(runner: CliRunner, cli_env: Path) -> None:
    created = runner.invoke(cli, ["keys", "create", "--role", "operator", "--name", "ops-laptop"])
    assert created.exit_code == 0 and "shown only this once" in created.output
    (key,) = created.stdout.split()
    assert re.fullmatch(r"reid_[\w-]{40,}", key)
    listing = runner.invoke(cli, ["keys", "list"]).output
    assert key[:12] in listing and "operator" in listing and "ops-laptop" in listing and key not in listing
    assert "revoked" in runner.invoke(cli, ["keys", "revoke", "1"]).output
    assert re.search(r"revoked \d{4}-\d\d-\d\d", runner.invoke(cli, ["keys", "list"]).output)
    again = runner.invoke(cli, ["keys", "revoke", "1"])
    assert again.exit_code == 1 and "already revoked" in again.output
    assert runner.invoke(cli, ["keys", "create", "--role", "root"]).exit_code == 2
    mismatch = runner.invoke(cli, ["users", "create", "eve", "--role", "viewer"],
                             input=f"{PASSWORD}\nother one!!!!\n")
    assert mismatch.exit_code != 0
    short = runner.invoke(cli, ["users", "create", "eve", "--role", "viewer", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert runner.invoke(cli, ["users", "list"]).output.strip() == "no users yet"
    missing = runner.invoke(cli, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "no user is named 'nobody'" in missing.output


def test_audit_log_is_append_only(app: Flask, database_url: str) -> None:
    make_key(app, "viewer", "k")
    engine = make_engine(database_url)
    try:
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(sa.text(statement))
        with engine.connect() as connection:
            assert connection.execute(sa.select(AuditEntry.actor)).scalars().all() == ["test"]
    finally:
        engine.dispose()


def test_export_csv_json_since_and_no_personal_data(runner: CliRunner, cli_env: Path, app: Flask,
                                                    client: FlaskClient) -> None:
    enrolled = client.post("/api/persons", data={"name": "Secret Name", "notes": "secret notes",
                                                 "images": [image_file(4, 0)]}).json
    client.post("/api/search", data={"image": image_file(4, 5)})
    client.delete(f"/api/persons/{enrolled['person']['id']}")
    make_key(app, "viewer", "=HYPERLINK(\"http://evil.example\")")

    as_json = runner.invoke(cli, ["audit", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [r["action"] for r in rows] == ["enroll", "save_search", "search", "delete_person", "key_create"]
    assert set(rows[0]) == {"id", "at", "actor", "action", "target", "details"}
    as_csv = runner.invoke(cli, ["audit"]).stdout
    table = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["action"] for r in table] == [r["action"] for r in rows]
    assert json.loads(table[2]["details"]) == rows[2]["details"]
    for text in (as_json.stdout, as_csv):
        for secret in ("Secret Name", "secret notes", "4_0.jpg", jpeg_sha(4, 0)):
            assert secret not in text

    future = runner.invoke(cli, ["audit", "--since", "2999-01-01", "--format", "json"])
    assert json.loads(future.stdout) == []
    assert len(json.loads(runner.invoke(cli, ["audit", "--since", "2000-01-01T00:00+02:00",
                                              "--format", "json"]).stdout)) == 5
    bad = runner.invoke(cli, ["audit", "--since", "yesterday"])
    assert bad.exit_code == 2 and "give an ISO date or time" in bad.output


def test_csv_export_defuses_spreadsheet_formulas(app: Flask) -> None:
    with app.extensions["reid"].sessions() as session:
        audit.record(session, "=cmd|' /C calc'!A0", "login_failed", target="@SUM(A1)")
        session.commit()
        (row,) = list(csv.reader(io.StringIO(audit.export(audit.entries(session), "csv"))))[1:]
    assert row[2] == "'=cmd|' /C calc'!A0" and row[4] == "'@SUM(A1)"


def jpeg_sha(person: int, variant: int) -> str:
    return hashlib.sha256(jpeg_bytes(person_image(person, variant))).hexdigest()
