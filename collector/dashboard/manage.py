"""The pages that change things: waivers, agents and enrolment tokens, users and API tokens.

Each change is a POST from a form carrying the session's CSRF token, made by the same storage function the
API and the CLI use, audited in the same transaction under the signed-in user (`user:<name>`). After a
change the browser is sent to a page that shows the result (post/redirect/get), except where a secret is
shown once (a new enrolment or API token), which is never put in a URL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Connection

from checks.durations import parse_duration
from collector.api.state import AppState
from collector.dashboard import data
from collector.dashboard.downloads import csv_response, wants_csv
from collector.dashboard.render import page
from collector.dashboard.session import can_admin, can_read, can_waive, checked_form, state_of
from collector.security import Permission, Role, allowed
from collector.storage import policies as policy_store
from collector.storage import registry, sessions, users
from collector.storage import waivers as waiver_store
from collector.storage.engine import read_tx, run_write
from collector.storage.sessions import SessionUser
from collector.storage.users import UserError
from collector.storage.waivers import WaiverError

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
Text = Annotated[str, Query(max_length=200)]
WAIVER_STATES = ("requested", "approved", "rejected", "revoked", "expired")


def _read(state: AppState, work: Callable[[Connection], T]) -> T:
    with read_tx(state.engine) as connection:
        return work(connection)


async def _write(state: AppState, work: Callable[[Connection, dt.datetime], T]) -> T:
    now = state.now()
    return await to_thread.run_sync(lambda: run_write(state.engine, lambda c: work(c, now)))


def _back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(path + (("?" + urlencode(params)) if params else ""), status_code=303)


# --- waivers -------------------------------------------------------------------------------------------


@router.get("/waivers")
def waivers(
    request: Request,
    user: Annotated[SessionUser, Depends(can_read)],
    state_filter: Annotated[str, Query(alias="state", max_length=20)] = "",
    format: Text = "",
) -> Response:
    state = state_of(request)
    chosen = state_filter if state_filter in WAIVER_STATES else ""
    rows = _read(state, lambda c: waiver_store.list_waivers(c, chosen or None))
    if wants_csv(format):
        header = ("id", "check", "policy", "scope", "justification", "ticket", "expires", "state", "requested_by",
                  "requested_at", "approved_by", "approved_at", "closed_by", "closed_at")  # fmt: skip
        return csv_response("rampart-waivers.csv", header, ([w.get(k) for k in header] for w in rows))
    context = {
        "title": "Waivers",
        "waivers": rows,
        "state_filter": chosen,
        "states": WAIVER_STATES,
        "can_waive": allowed(user.role, Permission.WAIVE),
        "csv_url": "/waivers?" + urlencode({k: v for k, v in (("state", chosen),) if v} | {"format": "csv"}),
    }
    return page(request, "waivers.html", context)


def _waiver_form(request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    state = state_of(request)
    checks = _read(state, data.known_checks)
    return page(
        request,
        "waiver_new.html",
        {
            "title": "Request a waiver",
            "values": values,
            "errors": errors,
            "check_items": [{"value": "", "text": "Select a check"}]
            + [
                {"value": f"{c['policy']}/{c['check']}", "text": f"{c['title'] or c['check']} ({c['policy']})"}
                for c in checks
            ],
        },
        status=status,
    )


@router.get("/waivers/new")
def new_waiver(
    request: Request,
    user: Annotated[SessionUser, Depends(can_waive)],
    check: Text = "",
    host: Text = "",
) -> Response:
    values = {"check": check, "scope": "hosts" if host else "", "targets": host}
    return _waiver_form(request, values, {})


def _expiry(values: dict[str, str]) -> dt.date | None:
    try:
        return dt.date(int(values["expires-year"]), int(values["expires-month"]), int(values["expires-day"]))
    except (KeyError, ValueError):
        return None


@router.post("/waivers/new")
async def request_waiver(request: Request, user: Annotated[SessionUser, Depends(can_waive)]) -> Response:
    form = await checked_form(request, user)
    state = state_of(request)
    errors: dict[str, str] = {}
    policy_id, _, check_id = form.get("check", "").partition("/")
    if not check_id:
        errors["check"] = "Select the check to waive"
    scope_kind = form.get("scope", "")
    targets = [t.strip() for t in form.get("targets", "").replace("\n", ",").split(",") if t.strip()]
    if scope_kind not in ("hosts", "groups", "all"):
        errors["scope"] = "Select what the waiver covers"
    elif scope_kind != "all" and not targets:
        errors["targets"] = f"Enter the {scope_kind} the waiver covers, separated by commas"
    justification = form.get("justification", "").strip()
    if not justification:
        errors["justification"] = "Enter why the risk is accepted"
    elif len(justification) > 5000:
        errors["justification"] = "The justification must be 5,000 characters or fewer"
    expires = _expiry(form)
    if expires is None:
        errors["expires"] = "Enter a real expiry date, for example 31 3 2027"
    elif expires < state.now().date():
        errors["expires"] = "The expiry date must be today or in the future"
    if errors:
        return await to_thread.run_sync(lambda: _waiver_form(request, form, errors, status=400))
    scope: dict[str, Any] = {"all": True} if scope_kind == "all" else {scope_kind: targets}
    assert expires is not None

    def work(connection: Connection, now: dt.datetime) -> dict[str, Any]:
        return waiver_store.request(
            connection,
            check_id=check_id,
            policy_id=policy_id or None,
            scope=scope,
            justification=justification,
            expires=expires,
            requested_by=user.user,
            now=now,
            ticket=form.get("ticket", "").strip()[:100],
            known_checks=policy_store.known_checks(connection),
        )

    try:
        waiver = await _write(state, work)
    except WaiverError as exc:
        refusal = {"check" if exc.code == "unknown_check" else "justification": exc.message}
        return await to_thread.run_sync(lambda: _waiver_form(request, form, refusal, status=400))
    return _back(f"/waivers/{quote(waiver['id'])}", done="requested")


@router.get("/waivers/{waiver_id}")
def waiver(request: Request, waiver_id: str, user: Annotated[SessionUser, Depends(can_read)]) -> Response:
    state = state_of(request)
    try:
        found = _read(state, lambda c: waiver_store.get(c, waiver_id))
    except WaiverError as exc:
        return page(request, "error.html", {"title": "Not found", "message": exc.message}, status=404)
    context = {
        "title": f"Waiver {found['id']}",
        "waiver": found,
        "done": request.query_params.get("done", ""),
        "can_waive": allowed(user.role, Permission.WAIVE),
        "is_requester": found["requested_by"].strip().lower() == user.user.strip().lower(),
    }
    return page(request, "waiver.html", context)


@router.post("/waivers/{waiver_id}/{action}")
async def change_waiver(
    request: Request, waiver_id: str, action: str, user: Annotated[SessionUser, Depends(can_waive)]
) -> Response:
    await checked_form(request, user)
    state = state_of(request)
    if action not in ("approve", "reject", "revoke"):
        return page(request, "error.html", {"title": "Not found", "message": "No such action."}, status=404)

    def work(connection: Connection, now: dt.datetime) -> dict[str, Any]:
        if action == "approve":
            return waiver_store.approve(connection, waiver_id, approver=user.user, now=now)
        return waiver_store.close(connection, waiver_id, by=user.user, now=now, action=action)

    try:
        await _write(state, work)
    except WaiverError as exc:
        status = 404 if exc.code == "not_found" else 403 if exc.code == "approver_is_requester" else 409
        context = {"title": "The waiver was not changed", "message": exc.message, "back": f"/waivers/{waiver_id}"}
        return await to_thread.run_sync(lambda: page(request, "error.html", context, status=status))
    return _back(f"/waivers/{quote(waiver_id)}", done=f"{action}d" if action != "approve" else "approved")


# --- agents and enrolment tokens (admin) ---------------------------------------------------------------


def _agents_page(request: Request, user: SessionUser, *, new_token: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, status: int = 200) -> Response:  # fmt: skip
    state = state_of(request)
    now = state.now()
    asked = request.query_params.get("page", "1") if request.method == "GET" else "1"
    page_number = min(max(1, int(asked)), 100_000) if asked.isdigit() else 1

    def work(connection: Connection) -> dict[str, Any]:
        tokens = registry.list_tokens(connection, now)
        listing = data.host_page(
            connection,
            data.HostQuery(revoked=True, page=page_number),
            now=now,
            stale_after=dt.timedelta(hours=state.config.stale_after_hours),
        )
        return {"tokens": tokens, **listing}

    found = _read(state, work)
    context = {
        "title": "Agents and enrolment tokens",
        **found,
        "new_token": new_token,
        "errors": errors or {},
        "default_group": state.config.default_group,
        "page_number": page_number,
        "has_next": found["more"],
        "page_url": lambda n: f"/agents?page={n}",
        "done": request.query_params.get("done", ""),
    }
    return page(request, "agents.html", context, status=status)


@router.get("/agents")
def agents(request: Request, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    return _agents_page(request, user)


@router.post("/agents/tokens")
async def create_enrolment_token(request: Request, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    form = await checked_form(request, user)
    state = state_of(request)
    errors = {}
    try:
        uses = int(form.get("uses", "1") or 1)
        if not 1 <= uses <= 1_000_000:
            raise ValueError
    except ValueError:
        errors["uses"] = "Enter a whole number of uses from 1 to 1,000,000"
        uses = 1
    try:
        valid_for = dt.timedelta(seconds=parse_duration(form.get("expires", "24h") or "24h"))
    except ValueError:
        errors["expires"] = "Enter how long the token is valid, for example 24h or 7d"
        valid_for = dt.timedelta(hours=24)
    group = form.get("group", "").strip() or state.config.default_group
    if errors:
        return await to_thread.run_sync(lambda: _agents_page(request, user, errors=errors, status=400))

    def work(connection: Connection, now: dt.datetime) -> tuple[str, dict[str, Any]]:
        return registry.create_token(
            connection,
            group=group[:100],
            max_uses=uses,
            valid_for=valid_for,
            created_by=user.actor,
            now=now,
            note=form.get("note", "")[:255],
        )

    secret, token = await _write(state, work)
    return await to_thread.run_sync(lambda: _agents_page(request, user, new_token={**token, "token": secret}))


@router.post("/agents/tokens/{token_id}/revoke")
async def revoke_enrolment_token(
    request: Request, token_id: str, user: Annotated[SessionUser, Depends(can_admin)]
) -> Response:
    await checked_form(request, user)
    state = state_of(request)
    await _write(state, lambda c, now: registry.revoke_token(c, token_id, by=user.actor, now=now))
    return _back("/agents", done="token-revoked")


@router.post("/agents/{agent_id}/revoke")
async def revoke_agent(request: Request, agent_id: str, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    await checked_form(request, user)
    state = state_of(request)
    await _write(state, lambda c, now: registry.revoke_agent(c, agent_id, by=user.actor, now=now))
    state.agents.forget(agent_id)
    return _back(f"/hosts/{quote(agent_id)}")


# --- users and API tokens (admin) ----------------------------------------------------------------------


def _users_page(request: Request, *, new_token: dict[str, Any] | None = None,
                errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                status: int = 200) -> Response:  # fmt: skip
    state = state_of(request)

    def work(connection: Connection) -> dict[str, Any]:
        return {"people": users.list_users(connection), "tokens": users.list_tokens(connection)}

    context = {
        "title": "Users and API tokens",
        **_read(state, work),
        "roles": [r.value for r in Role],
        "new_token": new_token,
        "errors": errors or {},
        "values": values or {},
        "done": request.query_params.get("done", ""),
    }
    return page(request, "users.html", context, status=status)


@router.get("/users")
def people(request: Request, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    return _users_page(request)


async def _user_change(
    request: Request, work: Callable[[Connection, dt.datetime], Any], form: dict[str, str]
) -> Response | None:
    try:
        await _write(state_of(request), work)
    except UserError as exc:
        refusal = {"password" if "password" in exc.code else "name": exc.message}
        return await to_thread.run_sync(lambda: _users_page(request, errors=refusal, values=form, status=400))
    return None


@router.post("/users")
async def add_person(request: Request, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    form = await checked_form(request, user)
    name, role = form.get("name", "").strip(), form.get("role", "")
    if not name:
        return await to_thread.run_sync(
            lambda: _users_page(request, errors={"name": "Enter a user name"}, values=form, status=400)
        )
    password = form.get("password", "")

    def work(connection: Connection, now: dt.datetime) -> None:
        users.add_user(connection, name, role, by=user.actor, now=now)
        if password:
            sessions.set_password(connection, name, password, by=user.actor, now=now)

    refused = await _user_change(request, work, form)
    return refused or _back("/users", done="added")


@router.post("/users/{name}/disable")
async def disable_person(request: Request, name: str, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    form = await checked_form(request, user)

    def work(connection: Connection, now: dt.datetime) -> None:
        users.disable_user(connection, name, by=user.actor, now=now)
        sessions.end_user_sessions(connection, name, now)

    refused = await _user_change(request, work, form)
    return refused or _back("/users", done="disabled")


@router.post("/users/{name}/password")
async def set_person_password(
    request: Request, name: str, user: Annotated[SessionUser, Depends(can_admin)]
) -> Response:
    form = await checked_form(request, user)
    password = form.get("password", "")
    refused = await _user_change(
        request, lambda c, now: sessions.set_password(c, name, password, by=user.actor, now=now), form
    )
    return refused or _back("/users", done="password-set")


@router.post("/users/tokens")
async def create_api_token(request: Request, user: Annotated[SessionUser, Depends(can_admin)]) -> Response:
    form = await checked_form(request, user)
    state = state_of(request)
    valid_for = None
    if form.get("expires"):
        try:
            valid_for = dt.timedelta(seconds=parse_duration(form["expires"]))
        except ValueError:
            return await to_thread.run_sync(
                lambda: _users_page(request, errors={"expires": "Enter a duration such as 90d"}, status=400)
            )
    try:
        secret, token = await _write(
            state,
            lambda c, now: users.create_token(
                c, form.get("user", ""), by=user.actor, now=now, label=form.get("label", "")[:255], valid_for=valid_for
            ),
        )
    except UserError as exc:
        refusal = {"user": exc.message}
        return await to_thread.run_sync(lambda: _users_page(request, errors=refusal, status=400))
    return await to_thread.run_sync(lambda: _users_page(request, new_token={**token, "token": secret}))


@router.post("/users/tokens/{token_id}/revoke")
async def revoke_api_token(
    request: Request, token_id: str, user: Annotated[SessionUser, Depends(can_admin)]
) -> Response:
    await checked_form(request, user)
    await _write(state_of(request), lambda c, now: users.revoke_token(c, token_id, by=user.actor, now=now))
    return _back("/users", done="token-revoked")
