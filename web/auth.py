"""Who is asking, and may they: API keys, signed-in users, roles, CSRF, security headers.

Every request is resolved to a principal before its view runs: an ``X-API-Key`` header
(API and pages alike), else on the pages the signed-in user of the session cookie, else
nobody. While no key and no user exist (open mode) everyone is ``open`` with every role;
``reid serve`` then listens on this machine only, and requests from other addresses are refused.
Each view declares the role it needs with ``@requires(role)`` or ``@public``; a view that
declares nothing needs ``admin``.

Forms on the pages carry a per-session CSRF token, checked on every unsafe request except
those authenticated by an API key (a browser cannot send that header cross-site). Unsafe
requests that a browser marks as cross-site are refused as well, which also guards the API
in open mode.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from gallery import access, audit
from gallery.access import Principal
from gallery.models import User
from web.errors import error_response
from web.state import db_session, reid

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC = "public"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN = Principal("open", "admin")
LOCAL_NAMES = ("localhost",)
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

bp = Blueprint("auth", __name__)


def requires(role: str) -> Callable[[F], F]:
    """Declare the role a view needs (checked before the view runs, for every request)."""
    access.check_role(role)

    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]  # the role is kept on the view function
        return view

    return mark


def public(view: F) -> F:
    """Declare a view open to everyone (it shows no personal data)."""
    view.required_role = PUBLIC  # type: ignore[attr-defined]  # the role is kept on the view function
    return view


def principal() -> Principal | None:
    """Return who is making this request (None: nobody authenticated)."""
    return g.get("principal")


def actor() -> str:
    """Return the audit actor of this request, e.g. ``key:3(ops-laptop)``, ``user:alice``, ``open``."""
    who = principal()
    return who.actor if who else "anonymous"


def csrf_token() -> str:
    """Return this session's CSRF token, creating it on first use."""
    if "csrf_token" not in session:
        session["csrf_token"] = secrets.token_urlsafe(32)
    return session["csrf_token"]


def is_local_host(host: str) -> bool:
    """Whether ``host`` (a name or address to listen on) is this machine only."""
    host = host.strip().strip("[]").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_mode_refusal(host: str, auth_enabled: bool) -> str | None:
    """Return why ``reid serve`` must not listen on ``host`` (None: it may)."""
    if auth_enabled or is_local_host(host):
        return None
    return (f"refusing to listen on {host}: no API key or user exists yet, so the service is in open "
            "mode and anyone who can reach it could use it. Listen on 127.0.0.1, ::1 or localhost, or "
            "first create a user (`reid users create NAME --role admin`) or an API key "
            "(`reid keys create --role ROLE`).")


def auth_enabled() -> bool:
    """Whether keys or users exist; once true it stays true (they are never deleted)."""
    cache = current_app.extensions["reid_auth"]
    if not cache["enabled"]:
        if not cache["database_checked"]:
            reid().check_database()
            cache["database_checked"] = True
        cache["enabled"] = access.auth_enabled(db_session())
    return cache["enabled"]


def init_app(app: Flask) -> None:
    """Resolve and check every request; add the security headers to every response."""
    app.extensions["reid_auth"] = {"enabled": False, "database_checked": False}
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.before_request(_check_host)
    app.before_request(_guard)
    app.after_request(_security_headers)
    app.context_processor(lambda: {"csrf_token": csrf_token, "principal": principal(),
                                   "open_mode": g.get("open_mode", False), "can": _can})
    app.register_blueprint(bp)


def _can(role: str) -> bool:
    who = principal()
    return who is not None and who.may(role)


def host_name(host: str) -> str:
    """Return a Host header's name without the port, lower case (``[::1]:5000`` -> ``[::1]``)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        return host[:host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether ``host`` names one of ``allowed`` (``.example.org``: it and every name under it)."""
    name = host_name(host)
    for entry in allowed:
        entry = host_name(entry)
        if name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False


def _check_host() -> ResponseReturnValue | None:
    """Refuse requests for host names the service does not answer to (DNS rebinding, forged links)."""
    allowed = reid().settings.trusted_hosts(open_mode=not auth_enabled())
    host = request.headers.get("Host", "")
    if allowed is not None and not host_allowed(host, allowed):
        return error_response(400, "host_not_allowed", f"this service does not answer to the host name "
                              f"{host_name(host)[:100]!r}; its operator can add it to REID_ALLOWED_HOSTS")
    if request.mimetype == "application/x-www-form-urlencoded":  # text fields only: never large
        limit = current_app.config["MAX_FORM_MEMORY_SIZE"]
        if limit is not None and (request.content_length or 0) > limit:
            return error_response(413, "request_entity_too_large",
                                  f"a form without files has at most {limit} bytes")
    return None


def _guard() -> ResponseReturnValue | None:
    """Find who is asking, then refuse what they may not do: 401, 403, or a redirect to sign in."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.endpoint == "static":
        return None
    needed = getattr(view, "required_role", "admin")
    api = request.path.startswith("/api/")
    presented = request.headers.get("X-API-Key")
    g.open_mode = not auth_enabled()
    if presented is not None:
        key = access.verify_key(db_session(), presented.strip())
        if key is None:
            return error_response(401, "unauthorized", "the API key is unknown or revoked")
        g.principal, g.by_key = Principal(access.key_actor(key), key.role), True
    elif g.open_mode:
        if needed != PUBLIC and not is_local_host(request.remote_addr or ""):  # not via `reid serve`
            return error_response(403, "open_mode", "the service is in open mode and serves this "
                                  "machine only: create a user with `reid users create`")
        g.principal = OPEN
    elif not api:
        g.principal = _session_user()
    if needed != PUBLIC:
        who = principal()
        if who is None:
            if api:
                return error_response(401, "unauthorized", "send a valid API key in the X-API-Key header")
            if request.method in SAFE_METHODS:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            return error_response(401, "unauthorized", "sign in first")
        if not who.may(needed):
            return error_response(403, "forbidden", f"this needs the {needed} role; {who.actor} has {who.role}")
    if request.method not in SAFE_METHODS and not g.get("by_key"):
        if _cross_site():
            return error_response(403, "cross_site_request", "cross-site requests are refused")
        if not api and not _csrf_ok():
            return error_response(403, "csrf_failed", "the form is out of date or did not come from "
                                  "this site: reload the page and try again")
    return None


def _session_user() -> Principal | None:
    user_id = session.get("user_id")
    if user_id is None:
        return None
    user = db_session().get(User, user_id)
    if user is None or user.disabled or session.get("generation") != user.session_generation:
        session.clear()  # signed out (anywhere), disabled, or the password changed since
        return None
    return Principal(f"user:{user.username}", user.role)


def _cross_site() -> bool:
    """Whether the browser says the request comes from another site (Sec-Fetch-Site, else Origin)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def _csrf_ok() -> bool:
    expected = session.get("csrf_token")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    return bool(expected and sent) and hmac.compare_digest(str(expected), str(sent))


def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    location = response.headers.get("Location")
    if location:  # Werkzeug's own redirects (//x -> /x) name the request's host: keep the path only
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host and is_local_path(parts.path or "/"):
            response.headers["Location"] = parts._replace(scheme="", netloc="").geturl()
    return response


def is_local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site: ``/...`` with no scheme, host, ``//``, backslash,
    or control characters, before or after percent-decoding (no open redirect)."""
    for text in (target, unquote(target)):
        if not text.startswith("/") or text.startswith(("//", "/\\")) or "\\" in text:
            return False
        if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
               for ch in text):  # tab, newline, NUL, RLO, ...: browsers drop some, headers refuse others
            return False
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return False
    return True


def _safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the search page (no open redirect)."""
    return target if target and is_local_path(target) else url_for("pages.index")


def _sign_in_limits() -> access.SignInLimits:
    settings = reid().settings
    return access.SignInLimits(settings.sign_in_limit_per_address, settings.sign_in_limit_per_user,
                               settings.sign_in_limit_window)


def _name_key() -> bytes:
    return hmac.new(str(current_app.secret_key).encode(), b"sign-in names", "sha256").digest()


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, failed=False)
    username = (request.form.get("username") or "").strip()
    address = request.remote_addr or "unknown"
    session_db = db_session()
    limits, key = _sign_in_limits(), _name_key()
    wait = access.sign_in_wait(session_db, address, username, limits, key=key)
    if wait is not None:
        log.warning("sign-in refused: too many failures from %s or on the name tried", address)
        body, status = error_response(429, "too_many_attempts", "too many failed sign-ins from this "
                                      f"address or for this user: try again in {wait} seconds")
        return body, status, {"Retry-After": str(wait)}
    user = access.authenticate(session_db, username, request.form.get("password") or "")
    if user is None:
        access.record_sign_in_failure(session_db, address, username, limits, key=key)
        known = session_db.scalar(sa.select(User.id).where(User.username == username)) is not None
        audit.record(session_db, "anonymous", "login_failed",  # an unknown name is not kept: it may be a password
                     target=f"user:{username}" if known else "user:?", remote_addr=address[:64])
        session_db.commit()
        return render_template("login.html", next_url=next_url, failed=True), 401
    access.forget_sign_in_failures(session_db, address, username, key=key)
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["generation"] = user.session_generation
    session["csrf_token"] = secrets.token_urlsafe(32)
    audit.record(session_db, f"user:{user.username}", "login", target=f"user:{user.username}",
                 remote_addr=address[:64])
    session_db.commit()
    return redirect(next_url, 303)


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    who = principal()
    if who is not None and who.actor.startswith("user:"):  # end the session on the server too
        access.end_sessions(db_session(), session["user_id"])
        audit.record(db_session(), who.actor, "logout", target=who.actor, remote_addr=request.remote_addr)
        db_session().commit()
    session.clear()
    return redirect(url_for("auth.login"), 303)
