"""Who may do what: API keys and users, each with a role; every change is audited.

Roles are ordered: a ``viewer`` may search and read; an ``operator`` may also enroll, add
images and index footage; an ``admin`` may also delete and manage keys and users.

While no API key and no user exist the service runs in *open mode* (no authentication,
local use only). Keys are revoked and users disabled, never deleted, so once one has been
created the service never falls back to open mode.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gallery import audit
from gallery.errors import Conflict, InvalidInput, NotFound
from gallery.models import ROLES, ApiKey, SignInFailure, User, utcnow
from gallery.passwords import check_password, hash_password

KEY_SCHEME = "reid_"
PREFIX_LENGTH = 12          # "reid_" + 7 random characters: shown in listings, used to find the row
MIN_PASSWORD_LENGTH = 12
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,100}")
LAST_USED_RESOLUTION = timedelta(minutes=5)  # write last_used_at at most this often per key

_DUMMY_HASH: list[str] = []  # a hash to check against when the user is unknown (same timing)


@dataclass(frozen=True)
class Principal:
    """Who is acting and with which role."""

    actor: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or above it."""
        return role_allows(self.role, role)


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` is ``needed`` or above it (viewer < operator < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(role: str) -> str:
    """Return ``role`` if it is known.

    Raises:
        InvalidInput: not one of ``ROLES``.
    """
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def auth_enabled(session: Session) -> bool:
    """Whether any API key or user was ever created (revoked and disabled ones count)."""
    return bool(session.scalar(sa.select(sa.exists().where(ApiKey.id.isnot(None))))
                or session.scalar(sa.select(sa.exists().where(User.id.isnot(None)))))


# -- API keys ----------------------------------------------------------------------------------

def hash_key(key: str) -> str:
    """Return the hex SHA-256 of a whole API key.

    A fast hash is right here, unlike for passwords: a key is 256 random bits, so no
    dictionary or brute-force search can find one from its hash however fast the hash is,
    while a slow hash (scrypt) would cost every API request tens of milliseconds for nothing.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def key_actor(key: ApiKey) -> str:
    """Return the audit actor of a key, e.g. ``key:3(ops-laptop)``."""
    return f"key:{key.id}({key.name[:60]})"


def create_key(session: Session, role: str, name: str = "", *, actor: str) -> tuple[ApiKey, str]:
    """Create an API key; return its row and the plaintext key, which is not stored anywhere.

    Raises:
        InvalidInput: unknown role, or a name over 200 characters.
    """
    check_role(role)
    name = (name or "").strip()
    if len(name) > 200:
        raise InvalidInput(f"a key's name has at most 200 characters, got {len(name)}")
    while True:
        key = KEY_SCHEME + secrets.token_urlsafe(32)
        prefix = key[:PREFIX_LENGTH]
        if session.scalar(sa.select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    row = ApiKey(name=name or f"key {prefix}", role=role, prefix=prefix, key_hash=hash_key(key))
    session.add(row)
    session.flush()
    audit.record(session, actor, "key_create", target=f"key:{row.id}", role=role, prefix=prefix)
    session.commit()
    return row, key


def verify_key(session: Session, presented: str) -> ApiKey | None:
    """Return the active key matching ``presented``, or None (unknown, wrong or revoked).

    The hashes are compared in constant time; ``last_used_at`` is updated every few minutes.
    """
    if not presented.startswith(KEY_SCHEME) or len(presented) > 200:
        return None
    row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == presented[:PREFIX_LENGTH]))
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(presented)):
        return None
    if row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.commit()
    return row


def revoke_key(session: Session, key_id: int, *, actor: str) -> ApiKey:
    """Revoke a key; it is refused from the next request on.

    Raises:
        NotFound: no key has that id. Conflict: it is already revoked.
    """
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key has id {key_id}")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} was already revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC")
    row.revoked_at = utcnow()
    audit.record(session, actor, "key_revoke", target=f"key:{row.id}", prefix=row.prefix)
    session.commit()
    return row


def list_keys(session: Session) -> list[ApiKey]:
    """Return every key, revoked ones included, oldest first."""
    return list(session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


# -- users -------------------------------------------------------------------------------------

def create_user(session: Session, username: str, password: str, role: str, *, actor: str) -> User:
    """Create a user who signs in to the pages; the password is stored as a salted scrypt hash.

    Raises:
        InvalidInput: bad username, short password or unknown role. Conflict: the name is taken.
    """
    check_role(role)
    if not USERNAME.fullmatch(username or ""):
        raise InvalidInput("a username has 1 to 100 letters, digits or . _ @ -, "
                           f"got {(username or '')[:40]!r}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password),
                role=role)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user_create", target=f"user:{username}", role=role)
    session.commit()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the enabled user with this name and password, else None.

    An unknown or disabled user costs the same password check, so timing tells nothing.
    """
    user = session.scalar(sa.select(User).where(User.username == username)) if username else None
    if user is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_hex(16)))
        check_password(_DUMMY_HASH[0], password)
        return None
    if not check_password(user.password_hash, password) or user.disabled:
        return None
    return user


def disable_user(session: Session, username: str, *, actor: str) -> User:
    """Disable a user; their signed-in sessions are refused from the next request on.

    Raises:
        NotFound: no such user. Conflict: already disabled.
    """
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user is named {username!r}")
    if user.disabled:
        raise Conflict(f"user {username!r} is already disabled")
    user.disabled = True
    user.session_generation += 1
    audit.record(session, actor, "user_disable", target=f"user:{username}")
    session.commit()
    return user


def set_password(session: Session, username: str, password: str, *, actor: str) -> User:
    """Give a user a new password; their signed-in sessions end.

    Raises:
        NotFound: no such user. InvalidInput: the password is too short.
    """
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user is named {username!r}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    user.session_generation += 1
    audit.record(session, actor, "user_password", target=f"user:{username}")
    session.commit()
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """End every signed-in session of a user (sign-out): raise their session generation (not committed)."""
    session.execute(sa.update(User).where(User.id == user_id)
                    .values(session_generation=User.session_generation + 1))


# -- sign-in rate limits -----------------------------------------------------------------------

@dataclass(frozen=True)
class SignInLimits:
    """At most ``per_address`` failed sign-ins from one address and ``per_user`` on one user name
    within ``window`` seconds; past either, sign-ins are refused until the oldest failure ages out."""

    per_address: int = 10
    per_user: int = 20
    window: int = 900


def name_key(username: str, key: bytes) -> str:
    """Return the keyed digest under which failures on a user name are counted (the name is not kept)."""
    return hmac.new(key, username.strip().lower().encode(), hashlib.sha256).hexdigest()


def sign_in_wait(session: Session, remote_addr: str, username: str, limits: SignInLimits, *,
                 key: bytes, now: datetime | None = None) -> int | None:
    """Return the seconds to wait before signing in from ``remote_addr`` as ``username`` (None: go ahead)."""
    now = now or utcnow()
    since = now - timedelta(seconds=limits.window)
    waits = []
    for column, value, limit in ((SignInFailure.remote_addr, remote_addr[:64], limits.per_address),
                                 (SignInFailure.username_sha256, name_key(username, key), limits.per_user)):
        times = session.scalars(sa.select(SignInFailure.at).where(column == value, SignInFailure.at > since)
                                .order_by(SignInFailure.at.desc()).limit(limit)).all()
        if len(times) >= limit:  # the limit-th newest must age out of the window first
            waits.append((times[-1] - since).total_seconds())
    return max(1, int(max(waits)) + 1) if waits else None


def record_sign_in_failure(session: Session, remote_addr: str, username: str, limits: SignInLimits, *,
                           key: bytes, now: datetime | None = None) -> None:
    """Count a failed sign-in (not committed), forgetting failures older than the window."""
    now = now or utcnow()
    session.execute(sa.delete(SignInFailure).where(SignInFailure.at <= now - timedelta(seconds=limits.window)))
    session.add(SignInFailure(at=now, remote_addr=remote_addr[:64], username_sha256=name_key(username, key)))


def forget_sign_in_failures(session: Session, remote_addr: str, username: str, *, key: bytes) -> None:
    """After a successful sign-in: drop the failures on this name from this address (not committed).

    Failures on other names stay counted, so signing in to one's own account does not reset
    the address's limit.
    """
    session.execute(sa.delete(SignInFailure).where(
        SignInFailure.remote_addr == remote_addr[:64], SignInFailure.username_sha256 == name_key(username, key)))


def list_users(session: Session) -> list[User]:
    """Return every user, disabled ones included, oldest first."""
    return list(session.scalars(sa.select(User).order_by(User.id)))
