"""Who is signed in, and the checks every dashboard request and form goes through.

- The session cookie holds a random secret (its SHA-256 names the row, collector/storage/sessions.py):
  HttpOnly, Secure, SameSite=Lax, `__Host-` prefixed (so no other host or path can set it). Lax, not
  Strict: after Microsoft's sign-in page sends the browser back (a top-level GET from another site), a
  Strict cookie would not be sent on that request nor on the redirect that follows, and the user would
  look signed out. Every change is a POST, which Lax keeps from other sites, and carries a CSRF token.
- CSRF: the synchronizer pattern; each session has a token, every form sends it in `csrf_token`, every
  POST compares it in constant time. The sign-in form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import Response

from collector.api.state import AppState
from collector.security import Permission, allowed
from collector.storage import sessions
from collector.storage.engine import read_tx, run_write
from collector.storage.sessions import SessionUser

TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most this often per session


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page (and back to `next` after)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadForm(Exception):
    """A POST without this session's CSRF token (or another site's form): refused with a page saying so."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.rampart
    return state


def cookie_name(state: AppState, name: str) -> str:
    return f"__Host-rampart_{name}" if state.config.dashboard.secure_cookies else f"rampart_{name}"


def set_cookie(
    response: Response,
    state: AppState,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    same_site: Literal["lax", "strict", "none"] = "lax",
) -> None:
    response.set_cookie(
        cookie_name(state, name),
        value,
        max_age=max_age,
        path="/",
        secure=state.config.dashboard.secure_cookies or same_site == "none",
        httponly=True,
        samesite=same_site,
    )


def clear_cookie(response: Response, state: AppState, name: str) -> None:
    response.delete_cookie(
        cookie_name(state, name), path="/", secure=state.config.dashboard.secure_cookies, httponly=True, samesite="lax"
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def session_of(request: Request) -> SessionUser | None:
    """The live session of this request, if any (read once per request; touched at most once a minute)."""
    if hasattr(request.state, "dashboard_user"):
        found: SessionUser | None = request.state.dashboard_user
        return found
    state = state_of(request)
    secret = request.cookies.get(cookie_name(state, "session"))
    user = None
    if secret:
        now = state.now()
        idle = state.config.dashboard.duration("idle_timeout")
        with read_tx(state.engine) as connection:
            user = sessions.session_for(connection, secret, now, idle)
            seen = sessions.last_seen(connection, user.session_id) if user is not None else None
        if user is not None and (seen is None or now - seen >= TOUCH_EVERY):
            session_id = user.session_id
            run_write(state.engine, lambda c: sessions.touch(c, session_id, now))
    request.state.dashboard_user = user
    if user is not None:
        request.state.actor = user.actor
    return user


def signed_in(request: Request) -> SessionUser:
    user = session_of(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return user


def require(permission: Permission) -> Callable[[Request], SessionUser]:
    def dependency(request: Request) -> SessionUser:
        user = signed_in(request)
        if not allowed(user.role, permission):
            raise Forbidden(f"The {user.role} role cannot do this: it needs the {permission.value} permission.")
        return user

    return dependency


can_read = require(Permission.READ)
can_waive = require(Permission.WAIVE)
can_export = require(Permission.EXPORT)
can_audit = require(Permission.AUDIT)
can_admin = require(Permission.ADMIN)


async def form_of(request: Request) -> dict[str, str]:
    """The fields of an application/x-www-form-urlencoded POST (the last value of each)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


async def checked_form(request: Request, user: SessionUser) -> dict[str, str]:
    """The form of a POST made by this session's own pages; BadForm otherwise."""
    form = await form_of(request)
    sent = form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise BadForm()
    return form


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def sign_in_token_ok(request: Request, form: dict[str, str]) -> bool:
    expected = request.cookies.get(cookie_name(state_of(request), "signin"), "")
    sent = form.get("csrf_token", "")
    return bool(expected and sent) and hmac.compare_digest(expected.encode(), sent.encode())


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //host or a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def sign_in_url(next_path: str) -> str:
    return "/sign-in" if next_path in ("", "/") else f"/sign-in?next={quote(next_path, safe='/')}"


def user_context(user: SessionUser | None) -> dict[str, Any]:
    return {"user": user}
