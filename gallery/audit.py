"""The audit log: who did what, when; written in the transaction of the change it accounts for.

The ``audit_log`` table is append-only (database triggers refuse UPDATE and DELETE), so an
entry can never be erased — which is why entries hold ids and counts only, never a person's
name, notes or enrolled images' hashes: erasing a person must leave nothing of them. A search's
still is identified by its SHA-256 in ``search_queries`` beside the entry instead: erasing a
person deletes the rows whose digest is one of their images' (``forget_digests``).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gallery.models import AuditEntry, SearchQuery

ACTIONS = (
    "search", "enroll", "add_images", "delete_person", "delete_image",
    "key_create", "key_revoke", "user_create", "user_disable", "user_password",
    "login", "login_failed", "logout", "index_footage", "purge_footage",
    "save_search", "purge_searches", "review_sighting",
)
EXPORT_FORMATS = ("csv", "json")
SYSTEM = "system"


def record(session: Session, actor: str, action: str, *, target: str | None = None,
           **details: object) -> AuditEntry:
    """Add an entry to ``session`` (not committed: it commits with the change it accounts for).

    Args:
        actor: who acted, e.g. ``key:3(ops-laptop)``, ``user:alice``, ``cli:root``, ``open``.
        action: one of ``ACTIONS``.
        target: what was acted on, e.g. ``person:7``, ``image:31``, ``key:3``, ``user:alice``.
        details: JSON-serializable ids, counts and settings (no names, notes or image hashes).
    """
    assert action in ACTIONS, action
    entry = AuditEntry(actor=actor[:200], action=action, target=target[:100] if target else None,
                       details=json.dumps(details, sort_keys=True, separators=(",", ":")))
    session.add(entry)
    return entry


def record_search(session: Session, actor: str, query_sha256: str | None, **details: object) -> AuditEntry:
    """Add a search's entry, and the still's SHA-256 beside it (not committed)."""
    entry = record(session, actor, "search", target=None, **details)
    if query_sha256:
        session.flush()
        session.add(SearchQuery(audit_id=entry.id, sha256=query_sha256))
    return entry


def forget_digests(session: Session, digests: Iterable[str]) -> int:
    """Delete the searched stills' digests that are in ``digests`` (an erased person's images); return how many."""
    digests = sorted(set(digests))
    if not digests:
        return 0
    result = session.execute(sa.delete(SearchQuery).where(SearchQuery.sha256.in_(digests)))
    return int(getattr(result, "rowcount", 0) or 0)


def cli_actor() -> str:
    """Return the actor of a command run on this machine: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def entries(session: Session, since: datetime | None = None) -> list[AuditEntry]:
    """Return the entries at or after ``since`` (all without it), oldest first."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(session.scalars(query))


def entry_dict(entry: AuditEntry) -> dict:
    """Serialize an entry, with its details parsed (a search's with the still's ``query_sha256``)."""
    details = json.loads(entry.details)
    if entry.query is not None:
        details["query_sha256"] = entry.query.sha256
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "details": details}


def export(rows: Iterable[AuditEntry], fmt: str) -> str:
    """Render entries as CSV (details as a JSON column) or as a JSON array.

    Raises:
        ValueError: ``fmt`` is not one of ``EXPORT_FORMATS``.
    """
    if fmt == "json":
        return json.dumps([entry_dict(e) for e in rows], indent=2)
    if fmt != "csv":
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "at", "actor", "action", "target", "details"])
    for e in rows:
        details = json.dumps(entry_dict(e)["details"], sort_keys=True, separators=(",", ":"))
        writer.writerow([e.id, e.at.isoformat(), _cell(e.actor), e.action, _cell(e.target or ""), details])
    return out.getvalue()


def _cell(text: str) -> str:
    """Keep a spreadsheet from reading free text (a key's name) as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
