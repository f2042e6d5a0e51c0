"""CLI commands ``reid keys``, ``reid users`` and ``reid audit``: access control and its record."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from gallery import access, audit
from gallery.models import ROLES
from web.auth import open_mode_refusal
from web.commands import cli_errors
from web.state import db_session, reid

_role_option = click.option("--role", type=click.Choice(ROLES), required=True,
                            help="viewer: search and read; operator: also enroll, add images, index "
                                 "footage; admin: also delete and manage keys and users.")


def _session() -> Session:
    """Return the command's session once the database is known to be migrated.

    Raises:
        DatabaseNotReady: the schema is missing or old (``cli_errors`` turns it into a message).
    """
    reid().check_database()
    return db_session()


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


@click.group("keys")
def keys() -> None:
    """Create, revoke and list API keys (the X-API-Key header of the JSON API)."""


@keys.command("create")
@_role_option
@click.option("--name", default="", help="What the key is for, e.g. the client's host name.")
@with_appcontext
@cli_errors
def keys_create(role: str, name: str) -> None:
    """Create a key and print it once: it cannot be shown again (only its hash is stored)."""
    row, key = access.create_key(_session(), role, name, actor=audit.cli_actor())
    click.echo(f"created API key {row.id} ({row.name}, {row.role}); it is shown only this once:", err=True)
    click.echo(key)


@keys.command("revoke")
@click.argument("key_id", type=int)
@with_appcontext
@cli_errors
def keys_revoke(key_id: int) -> None:
    """Revoke the key KEY_ID; requests with it are refused from now on."""
    row = access.revoke_key(_session(), key_id, actor=audit.cli_actor())
    click.echo(f"revoked API key {row.id} ({row.name})")


@keys.command("list")
@with_appcontext
@cli_errors
def keys_list() -> None:
    """List the keys: id, prefix, role, name, created, last used, revoked."""
    rows = access.list_keys(_session())
    for row in rows:
        state = f"revoked {_when(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"{row.id:>4}  {row.prefix}…  {row.role:<8}  {row.name}  created {_when(row.created_at)}"
                   f"  last used {_when(row.last_used_at)}  {state}")
    if not rows:
        click.echo("no API keys yet")


@click.group("users")
def users() -> None:
    """Create, disable and list the users who sign in to the web pages."""


@users.command("create")
@click.argument("username")
@_role_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@with_appcontext
@cli_errors
def users_create(username: str, role: str, password_stdin: bool) -> None:
    """Create the user USERNAME; the password is prompted for twice (or read from stdin)."""
    session = _session()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = access.create_user(session, username, password, role, actor=audit.cli_actor())
    click.echo(f"created user {user.username} ({user.role})")


@users.command("disable")
@click.argument("username")
@with_appcontext
@cli_errors
def users_disable(username: str) -> None:
    """Disable USERNAME: they can no longer sign in, and their open sessions end."""
    user = access.disable_user(_session(), username, actor=audit.cli_actor())
    click.echo(f"disabled user {user.username}")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@with_appcontext
@cli_errors
def users_set_password(username: str, password_stdin: bool) -> None:
    """Give USERNAME a new password (prompted for twice, or read from stdin); their open sessions end."""
    session = _session()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    user = access.set_password(session, username, password, actor=audit.cli_actor())
    click.echo(f"set a new password for {user.username}; their sessions have ended")


@users.command("list")
@with_appcontext
@cli_errors
def users_list() -> None:
    """List the users: id, name, role, created, disabled."""
    rows = access.list_users(_session())
    for user in rows:
        click.echo(f"{user.id:>4}  {user.username}  {user.role:<8}  created {_when(user.created_at)}"
                   f"{'  disabled' if user.disabled else ''}")
    if not rows:
        click.echo("no users yet")


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"give an ISO date or time, e.g. 2026-11-28 or 2026-11-28T09:00, "
                                 f"not {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("audit")
@click.option("--since", callback=_since, metavar="ISO",
              help="Only entries at or after this time (UTC unless it has an offset).")
@click.option("--format", "fmt", type=click.Choice(audit.EXPORT_FORMATS), default="csv", show_default=True)
@with_appcontext
@cli_errors
def audit_command(since: datetime | None, fmt: str) -> None:
    """Export the audit log: who searched, enrolled, deleted, signed in, managed access, when."""
    text = audit.export(audit.entries(_session(), since), fmt)
    click.echo(text, nl=not text.endswith("\n"))


def refuse_open_network(host: str) -> bool:
    """Stop ``reid serve`` from listening beyond this machine while the service is in open mode.

    Returns:
        Whether the service is in open mode (the server checks the sockets it binds too).

    Raises:
        click.ClickException: no key or user exists and ``host`` is not a loopback address.
    """
    enabled = access.auth_enabled(_session())
    refusal = open_mode_refusal(host, enabled)
    if refusal:
        raise click.ClickException(refusal)
    return not enabled


def register(group: click.Group) -> None:
    """Add ``keys``, ``users`` and ``audit`` to ``group``."""
    for command in (keys, users, audit_command):
        group.add_command(command)
