"""Signing in (a local password, or Microsoft Entra ID) and out.

Repeated failures are throttled across replicas (collector/storage/sessions.py): more than
`sign_in_max_failures` for one user name, or `sign_in_max_address_failures` from one address, within
`sign_in_window`, and sign-in is refused (without checking the password) until the window has moved on.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from collector.dashboard import entra
from collector.dashboard.render import page
from collector.dashboard.session import (
    clear_cookie,
    client_address,
    cookie_name,
    form_of,
    new_sign_in_token,
    safe_next,
    session_of,
    set_cookie,
    sign_in_token_ok,
    signed_in,
    state_of,
)
from collector.storage import audit, sessions
from collector.storage.engine import read_tx, run_write
from collector.storage.users import UserError

router = APIRouter(include_in_schema=False)


def _sign_in_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    name: str = "",
    status: int = 200,
    notice: str = "",
    next_path: str | None = None,
) -> Response:
    state = state_of(request)
    token = new_sign_in_token()
    response = page(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "errors": errors or {},
            "name": name,
            "next": safe_next(next_path if next_path is not None else request.query_params.get("next")),
            "signin_token": token,
            "entra": state.config.dashboard.entra.configured,
            "notice": notice,
        },
        status=status,
    )
    set_cookie(response, state, "signin", token, max_age=3600)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    if session_of(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    notice = {"signed-out": "You have signed out."}.get(request.query_params.get("done", ""), "")
    return _sign_in_page(request, notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    state = state_of(request)
    form = await form_of(request)
    if not sign_in_token_ok(request, form):
        return await to_thread.run_sync(
            lambda: _sign_in_page(
                request,
                errors={"name": "The sign-in form expired or came from another site: try again"},
                status=403,
            )
        )
    name = form.get("name", "").strip()
    password = form.get("password", "")
    errors = {}
    if not name:
        errors["name"] = "Enter your user name"
    if not password:
        errors["password"] = "Enter your password"
    if errors:
        return await to_thread.run_sync(
            lambda: _sign_in_page(request, errors=errors, name=name, status=400, next_path=form.get("next"))
        )
    settings = state.config.dashboard
    address = client_address(request)
    now = state.now()
    window_start = now - settings.duration("sign_in_window")

    def attempt() -> str | None:
        """'throttled', 'wrong', or None when the password is right."""
        with read_tx(state.engine) as connection:
            by_user, by_address = sessions.recent_failures(connection, name, address, window_start)
            if by_user >= settings.sign_in_max_failures or by_address >= settings.sign_in_max_address_failures:
                return "throttled"
            if sessions.verify_password(connection, name, password):
                return None
        run_write(state.engine, lambda c: sessions.record_failure(c, name, address, now))
        return "wrong"

    outcome = await to_thread.run_sync(attempt)
    if outcome == "throttled":

        def refuse() -> Response:
            run_write(
                state.engine,
                lambda c: audit.record(c, "system:dashboard", "session.throttled", name, {"address": address}, now),
            )
            minutes = max(1, int(settings.duration("sign_in_window").total_seconds() // 60))
            message = f"Too many failed sign-ins: wait {minutes} minutes and try again, or ask an administrator"
            return _sign_in_page(request, errors={"name": message}, name=name, status=429, next_path=form.get("next"))

        return await to_thread.run_sync(refuse)
    if outcome == "wrong":
        message = "The user name or password is not right"
        return await to_thread.run_sync(lambda: _sign_in_page(request, errors={"name": message}, name=name, status=401))

    def start() -> str:
        def work(connection: Any) -> str:
            sessions.forget_failures(connection, name)
            sessions.needs_rehash(connection, name, password)
            return sessions.start_session(
                connection,
                name,
                method="password",
                address=address,
                now=now,
                lifetime=settings.duration("session_lifetime"),
            )

        return run_write(state.engine, work)

    secret = await to_thread.run_sync(start)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    _set_session(response, request, secret)
    return response


def _set_session(response: Response, request: Request, secret: str) -> None:
    state = state_of(request)
    lifetime = int(state.config.dashboard.duration("session_lifetime").total_seconds())
    set_cookie(response, state, "session", secret, max_age=lifetime)
    clear_cookie(response, state, "signin")
    clear_cookie(response, state, "flow")


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    from collector.dashboard.session import checked_form

    state = state_of(request)
    user = await to_thread.run_sync(signed_in, request)
    await checked_form(request, user)
    now = state.now()
    await to_thread.run_sync(lambda: run_write(state.engine, lambda c: sessions.end_session(c, user, now)))
    response = RedirectResponse("/sign-in?done=signed-out", status_code=303)
    clear_cookie(response, state, "session")
    return response


# --- Microsoft Entra ID ----------------------------------------------------------------------------------


@router.get("/auth/entra/start")
def entra_start(request: Request) -> Response:
    state = state_of(request)
    settings = state.config.dashboard.entra
    if not settings.configured:
        return _sign_in_page(request, errors={"name": "Sign-in with Microsoft is not set up here"}, status=404)
    try:
        flow = entra.sign_in_for(settings).start()
    except entra.SignInError as exc:
        return _sign_in_page(request, errors={"name": str(exc)}, status=502)
    flow["next"] = safe_next(request.query_params.get("next"))
    response = RedirectResponse(flow["auth_uri"], status_code=303)
    sealed = entra.seal_flow(entra.flow_cipher(state.signing_key), flow)
    set_cookie(response, state, "flow", sealed, max_age=entra.FLOW_TTL_S, same_site="none")
    return response


@router.api_route("/auth/entra/callback", methods=["GET", "POST"])
async def entra_callback(request: Request) -> Response:
    """Microsoft's answer: posted (form_post), or in the query for an error shown before any form."""
    answer = await form_of(request) if request.method == "POST" else dict(request.query_params)
    return await to_thread.run_sync(lambda: _finish_entra(request, answer))


def _finish_entra(request: Request, answer: dict[str, str]) -> Response:
    state = state_of(request)
    settings = state.config.dashboard.entra
    if not settings.configured:
        return _sign_in_page(request, errors={"name": "Sign-in with Microsoft is not set up here"}, status=404)
    address = client_address(request)
    now = state.now()
    sealed = request.cookies.get(cookie_name(state, "flow"), "")
    try:
        flow = entra.open_flow(entra.flow_cipher(state.signing_key), sealed)
        identity = entra.sign_in_for(settings).finish(flow, answer)
    except entra.SignInError as exc:
        message = str(exc)
        run_write(
            state.engine,
            lambda c: audit.record(c, "system:dashboard", "session.entra_refused", "", {"reason": message}, now),
        )
        response = _sign_in_page(request, errors={"name": message}, status=401)
        clear_cookie(response, state, "flow")
        return response

    def work(connection: Any) -> str:
        name = sessions.entra_user(
            connection, external_id=identity.external_id, name=identity.name, role=identity.role, now=now
        )
        return sessions.start_session(
            connection,
            name,
            method="entra",
            address=address,
            now=now,
            lifetime=settings_lifetime,
        )

    settings_lifetime = state.config.dashboard.duration("session_lifetime")
    try:
        secret = run_write(state.engine, work)
    except UserError as exc:
        return _sign_in_page(request, errors={"name": exc.message}, status=403)
    response = RedirectResponse(safe_next(str(flow.get("next") or "/")), status_code=303)
    _set_session(response, request, secret)
    return response
