"""API keys, users and roles: what is stored, what is accepted, and that each change is audited."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gallery import access
from gallery.errors import Conflict, InvalidInput, NotFound
from gallery.models import ROLES, ApiKey, AuditEntry, User

pytestmark = pytest.mark.both_databases

PASSWORD = "correct horse battery staple"


def audit_rows(session: Session) -> list[tuple[str, str, str | None, dict]]:
    return [(e.actor, e.action, e.target, json.loads(e.details))
            for e in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_roles_are_ordered() -> None:
    assert ROLES == ("viewer", "operator", "admin")
    allowed = {(have, need) for have in ROLES for need in ROLES if access.role_allows(have, need)}
    assert allowed == {("viewer", "viewer"), ("operator", "viewer"), ("operator", "operator"),
                       ("admin", "viewer"), ("admin", "operator"), ("admin", "admin")}
    with pytest.raises(InvalidInput, match="role must be one of viewer, operator, admin"):
        access.check_role("root")


def test_key_is_returned_once_and_only_its_prefix_and_hash_are_stored(session: Session) -> None:
    row, key = access.create_key(session, "operator", "ops-laptop", actor="cli:root")
    assert key.startswith("reid_") and len(key) >= 40
    assert row.prefix == key[:12] and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = session.execute(sa.select(ApiKey.__table__)).one()
    assert key not in [str(value) for value in stored]
    assert access.verify_key(session, key).id == row.id
    assert access.verify_key(session, key).last_used_at is not None
    assert access.key_actor(row) == f"key:{row.id}(ops-laptop)"
    assert audit_rows(session) == [("cli:root", "key_create", f"key:{row.id}",
                                    {"prefix": row.prefix, "role": "operator"})]


def test_wrong_and_revoked_keys_are_refused(session: Session) -> None:
    row, key = access.create_key(session, "viewer", actor="cli:root")
    other_row, other = access.create_key(session, "viewer", actor="cli:root")
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")  # right prefix, wrong secret
    for wrong in (tampered, key + "x", "", "reid_", other[:12] + key[12:], "Bearer " + key, key.upper()):
        assert access.verify_key(session, wrong) is None, wrong
    access.revoke_key(session, row.id, actor="cli:root")
    assert access.verify_key(session, key) is None
    assert access.verify_key(session, other).id == other_row.id
    with pytest.raises(Conflict, match="already revoked"):
        access.revoke_key(session, row.id, actor="cli:root")
    with pytest.raises(NotFound, match="no API key has id 99"):
        access.revoke_key(session, 99, actor="cli:root")
    assert [r[1:3] for r in audit_rows(session)] == [
        ("key_create", f"key:{row.id}"), ("key_create", f"key:{other_row.id}"), ("key_revoke", f"key:{row.id}")]
    assert [(k.id, k.revoked_at is not None) for k in access.list_keys(session)] == [(row.id, True),
                                                                                      (other_row.id, False)]


def test_users_passwords_are_salted_slow_hashes(session: Session) -> None:
    alice = access.create_user(session, "alice", PASSWORD, "admin", actor="cli:root")
    bob = access.create_user(session, "bob", PASSWORD, "viewer", actor="cli:root")
    assert alice.password_hash.startswith("scrypt:") and PASSWORD not in alice.password_hash
    assert alice.password_hash != bob.password_hash  # salted
    assert access.authenticate(session, "alice", PASSWORD).id == alice.id
    assert access.authenticate(session, "alice", PASSWORD + "!") is None
    assert access.authenticate(session, "nobody", PASSWORD) is None
    assert access.authenticate(session, "", "") is None
    access.disable_user(session, "bob", actor="cli:root")
    assert access.authenticate(session, "bob", PASSWORD) is None
    assert [(u.username, u.role, u.disabled) for u in access.list_users(session)] == [
        ("alice", "admin", False), ("bob", "viewer", True)]
    assert audit_rows(session) == [("cli:root", "user_create", "user:alice", {"role": "admin"}),
                                   ("cli:root", "user_create", "user:bob", {"role": "viewer"}),
                                   ("cli:root", "user_disable", "user:bob", {})]


@pytest.mark.parametrize(("username", "password", "role", "error", "message"), [
    ("carol", "short", "viewer", InvalidInput, "at least 12 characters"),
    ("carol smith", PASSWORD, "viewer", InvalidInput, "a username has"),
    ("", PASSWORD, "viewer", InvalidInput, "a username has"),
    ("carol", PASSWORD, "superuser", InvalidInput, "role must be one of"),
    ("alice", PASSWORD, "viewer", Conflict, "already exists"),
])
def test_bad_users_are_refused(session: Session, username: str, password: str, role: str,
                               error: type[Exception], message: str) -> None:
    access.create_user(session, "alice", PASSWORD, "admin", actor="cli:root")
    with pytest.raises(error, match=message):
        access.create_user(session, username, password, role, actor="cli:root")
    assert session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_disable_refuses_unknown_and_repeated(session: Session) -> None:
    access.create_user(session, "dave", PASSWORD, "viewer", actor="cli:root")
    with pytest.raises(NotFound, match="no user is named 'erin'"):
        access.disable_user(session, "erin", actor="cli:root")
    access.disable_user(session, "dave", actor="cli:root")
    with pytest.raises(Conflict, match="already disabled"):
        access.disable_user(session, "dave", actor="cli:root")


def test_open_mode_ends_for_good_with_the_first_key_or_user(session: Session) -> None:
    assert not access.auth_enabled(session)
    row, _ = access.create_key(session, "viewer", actor="cli:root")
    assert access.auth_enabled(session)
    access.revoke_key(session, row.id, actor="cli:root")
    assert access.auth_enabled(session)  # a revoked key still ends open mode
