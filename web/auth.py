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
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

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
    app.before_request(_guard)
    app.after_request(_security_headers)
    app.context_processor(lambda: {"csrf_token": csrf_token, "principal": principal(),
                                   "open_mode": g.get("open_mode", False), "can": _can})
    app.register_blueprint(bp)


def _can(role: str) -> bool:
    who = principal()
    return who is not None and who.may(role)


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
    if user is None or user.disabled:
        session.clear()
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
    return response


def _safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the search page (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, failed=False)
    username = (request.form.get("username") or "").strip()
    session_db = db_session()
    user = access.authenticate(session_db, username, request.form.get("password") or "")
    if user is None:
        audit.record(session_db, "anonymous", "login_failed", target=f"user:{username[:90]}",
                     remote_addr=request.remote_addr)
        session_db.commit()
        return render_template("login.html", next_url=next_url, failed=True), 401
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["csrf_token"] = secrets.token_urlsafe(32)
    audit.record(session_db, f"user:{user.username}", "login", target=f"user:{user.username}",
                 remote_addr=request.remote_addr)
    session_db.commit()
    return redirect(next_url, 303)


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    who = principal()
    if who is not None and who.actor.startswith("user:"):
        audit.record(db_session(), who.actor, "logout", target=who.actor, remote_addr=request.remote_addr)
        db_session().commit()
    session.clear()
    return redirect(url_for("auth.login"), 303)
