"""Managing the collector over the API: enrolment tokens, agents, users, API tokens, policies, waivers.

Every change is written to the audit log by the storage function that makes it, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from checks.policy.loader import PolicyError, load_policy_document, load_policy_text
from checks.policy.model import parse_duration
from collector.api import bodies
from collector.api.auth import admin_access, read_access, waive_access
from collector.api.errors import API_ERRORS, ApiError, error_responses
from collector.api.state import AppState
from collector.storage import policies as policy_store
from collector.storage import registry, users
from collector.storage import waivers as waiver_store
from collector.storage.engine import read_tx, run_write
from collector.storage.users import Caller, UserError
from collector.storage.waivers import WaiverError

router = APIRouter(prefix="/api/v1", responses=API_ERRORS, tags=["administration"])
T = TypeVar("T")


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.rampart
    return state


def changing(request: Request, work: Callable[[Connection, dt.datetime], T]) -> T:
    state = state_of(request)
    now = state.now()
    try:
        return run_write(state.engine, lambda c: work(c, now))
    except (UserError, WaiverError) as exc:
        status = {
            "not_found": 404,
            "duplicate_user": 409,
            "duplicate_waiver": 409,
            "bad_state": 409,
            "cannot_disable_self": 409,
            "last_admin": 409,
        }.get(exc.code, 400)
        if exc.code == "approver_is_requester":
            status = 403
        raise ApiError(status, exc.code, exc.message) from None


def listing(request: Request, work: Callable[[Connection], T]) -> T:
    with read_tx(state_of(request).engine) as connection:
        return work(connection)


def _duration(text: str, what: str) -> dt.timedelta:
    """A duration from now: refused when the date it ends on cannot be written (after the year 9999)."""
    try:
        span = dt.timedelta(seconds=parse_duration(text))
        dt.datetime.now(dt.UTC) + span
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{what}: {exc}") from None
    except OverflowError:
        raise ApiError(400, "bad_request", f"{what}: {text!r} is too long: it would end after the year 9999") from None
    return span


def actor(caller: Caller) -> str:
    return f"user:{caller.user}"


# --- enrolment tokens and agents -----------------------------------------------------------------------


class TokenRequest(BaseModel):
    group: str | None = Field(default=None, max_length=100, description="default: the collector's default group")
    uses: int = Field(default=1, ge=1, le=1_000_000)
    expires_in: str = Field(default="24h", description="e.g. 30m, 24h, 7d")
    note: str = Field(default="", max_length=255)


@router.post("/enroll-tokens", status_code=201, summary="Create an enrolment token (the secret is shown once)")
def create_enroll_token(
    request: Request, body: TokenRequest, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    valid_for = _duration(body.expires_in, "expires_in")
    group = body.group or state_of(request).config.default_group
    secret, token = changing(
        request,
        lambda c, now: registry.create_token(
            c, group=group, max_uses=body.uses, valid_for=valid_for, created_by=actor(caller), now=now, note=body.note
        ),
    )
    return {**token, "token": secret}


@router.get("/enroll-tokens", summary="Enrolment tokens with their uses and state")
def list_enroll_tokens(request: Request, _caller: Annotated[Caller, Depends(admin_access)]) -> list[dict[str, Any]]:
    return listing(request, lambda c: registry.list_tokens(c, state_of(request).now()))


@router.delete("/enroll-tokens/{token_id}", responses=error_responses(404), summary="Revoke an enrolment token")
def revoke_enroll_token(
    request: Request, token_id: str, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    if not changing(request, lambda c, now: registry.revoke_token(c, token_id, by=actor(caller), now=now)):
        raise ApiError(404, "not_found", f"no active enrolment token {token_id!r}")
    return {"id": token_id, "revoked": True}


@router.get("/agents", summary="Enrolled agents")
def list_agents(
    request: Request, _caller: Annotated[Caller, Depends(read_access)], include_revoked: bool = True
) -> list[dict[str, Any]]:
    return listing(request, lambda c: registry.list_agents(c, include_revoked=include_revoked))


@router.post(
    "/agents/{agent_id}/revoke",
    responses=error_responses(404),
    summary="Revoke an agent: its requests are refused from now on",
)
def revoke_agent(request: Request, agent_id: str, caller: Annotated[Caller, Depends(admin_access)]) -> dict[str, Any]:
    if not changing(request, lambda c, now: registry.revoke_agent(c, agent_id, by=actor(caller), now=now)):
        raise ApiError(404, "not_found", f"no active agent {agent_id!r}")
    state_of(request).agents.forget(agent_id)
    return {"agent_id": agent_id, "revoked": True}


# --- users and API tokens ------------------------------------------------------------------------------


class UserRequest(BaseModel):
    name: str = Field(max_length=100)
    role: Literal["admin", "analyst", "auditor"]


@router.get("/users", summary="Users and their roles")
def list_users(request: Request, _caller: Annotated[Caller, Depends(admin_access)]) -> list[dict[str, Any]]:
    return listing(request, users.list_users)


@router.post("/users", responses=error_responses(409), status_code=201, summary="Add a user")
def add_user(request: Request, body: UserRequest, caller: Annotated[Caller, Depends(admin_access)]) -> dict[str, Any]:
    return changing(request, lambda c, now: users.add_user(c, body.name, body.role, by=actor(caller), now=now))


@router.post(
    "/users/{name}/disable",
    responses=error_responses(404, 409),
    summary="Disable a user: their API tokens stop working (not yourself, nor the last enabled admin)",
)
def disable_user(request: Request, name: str, caller: Annotated[Caller, Depends(admin_access)]) -> dict[str, Any]:
    changed = changing(request, lambda c, now: users.disable_user(c, name, by=actor(caller), now=now))
    return {"name": name, "disabled": True, "changed": changed}


@router.post("/users/{name}/enable", responses=error_responses(404, 409), summary="Enable a disabled user again")
def enable_user(request: Request, name: str, caller: Annotated[Caller, Depends(admin_access)]) -> dict[str, Any]:
    changed = changing(request, lambda c, now: users.enable_user(c, name, by=actor(caller), now=now))
    return {"name": name, "disabled": False, "changed": changed}


class ApiTokenRequest(BaseModel):
    user: str = Field(max_length=100)
    label: str = Field(default="", max_length=255)
    expires_in: str | None = Field(default=None, description="e.g. 90d; none: until revoked")


@router.post(
    "/api-tokens",
    responses=error_responses(404),
    status_code=201,
    summary="Create an API token for a user (the secret is shown once)",
)
def create_api_token(
    request: Request, body: ApiTokenRequest, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    valid_for = _duration(body.expires_in, "expires_in") if body.expires_in else None
    secret, token = changing(
        request,
        lambda c, now: users.create_token(
            c, body.user, by=actor(caller), now=now, label=body.label, valid_for=valid_for
        ),
    )
    return {**token, "token": secret}


@router.get("/api-tokens", summary="API tokens (never their secrets)")
def list_api_tokens(
    request: Request, _caller: Annotated[Caller, Depends(admin_access)], user: str | None = None
) -> list[dict[str, Any]]:
    return listing(request, lambda c: users.list_tokens(c, user))


@router.delete("/api-tokens/{token_id}", responses=error_responses(404), summary="Revoke an API token")
def revoke_api_token(
    request: Request, token_id: str, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    if not changing(request, lambda c, now: users.revoke_token(c, token_id, by=actor(caller), now=now)):
        raise ApiError(404, "not_found", f"no active API token {token_id!r}")
    return {"id": token_id, "revoked": True}


# --- policies ------------------------------------------------------------------------------------------


@router.get("/policies", summary="Stored policies (newest version of each) and the groups they are assigned to")
def list_policies(request: Request, _caller: Annotated[Caller, Depends(read_access)]) -> list[dict[str, Any]]:
    return listing(request, policy_store.list_policies)


@router.post("/policies", status_code=201, summary="Store a policy version (YAML text or a JSON document)")
def add_policy(
    request: Request,
    caller: Annotated[Caller, Depends(admin_access)],
    document: Annotated[Any, Body(description='the policy as a JSON object, or {"yaml": "..."}')],
) -> dict[str, Any]:
    try:
        if isinstance(document, dict) and set(document) == {"yaml"} and isinstance(document["yaml"], str):
            policy = load_policy_text(document["yaml"], source="uploaded policy")
        else:
            bodies.check_depth(document, what="the policy")
            policy = load_policy_document(document, source="uploaded policy")
    except PolicyError as exc:
        problems = [str(issue) for issue in exc.issues]
        raise ApiError(400, "invalid_policy", "; ".join(problems), problems=problems) from None
    except bodies.BadJson as exc:
        raise ApiError(400, "bad_json", str(exc)) from None
    except RecursionError:  # YAML nested beyond what its parser can follow
        raise ApiError(400, "invalid_policy", "the policy nests too deeply to be read") from None
    return changing(request, lambda c, now: policy_store.add(c, policy, by=actor(caller), now=now))


@router.put(
    "/policies/{policy_id}/groups/{group}", responses=error_responses(404), summary="Assign a policy to a group"
)
def assign_policy(
    request: Request, policy_id: str, group: str, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    try:
        added = changing(request, lambda c, now: policy_store.assign(c, group, policy_id, by=actor(caller), now=now))
    except LookupError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return {"policy": policy_id, "group": group, "assigned": True, "changed": added}


@router.delete(
    "/policies/{policy_id}/groups/{group}", responses=error_responses(404), summary="Stop assigning a policy to a group"
)
def unassign_policy(
    request: Request, policy_id: str, group: str, caller: Annotated[Caller, Depends(admin_access)]
) -> dict[str, Any]:
    removed = changing(request, lambda c, now: policy_store.unassign(c, group, policy_id, by=actor(caller), now=now))
    if not removed:
        raise ApiError(404, "not_found", f"policy {policy_id!r} is not assigned to group {group!r}")
    return {"policy": policy_id, "group": group, "assigned": False}


# --- waivers -------------------------------------------------------------------------------------------


class WaiverScopeBody(BaseModel):
    hosts: list[str] = Field(default_factory=list, description="agent ids or host name patterns (fnmatch)")
    groups: list[str] = Field(default_factory=list)
    tenants: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    all: bool = False


class WaiverRequest(BaseModel):
    id: str | None = Field(default=None, max_length=100, description="default: generated")
    check: str = Field(max_length=200)
    policy: str | None = Field(default=None, max_length=100)
    scope: WaiverScopeBody
    justification: str = Field(min_length=1, max_length=5000)
    expires: dt.date
    ticket: str = Field(default="", max_length=100)


@router.get("/waivers", summary="Waivers and their state")
def list_waivers(
    request: Request,
    _caller: Annotated[Caller, Depends(read_access)],
    state: Literal["requested", "approved", "rejected", "revoked", "expired"] | None = None,
) -> list[dict[str, Any]]:
    return listing(request, lambda c: waiver_store.list_waivers(c, state))


@router.post(
    "/waivers",
    responses=error_responses(409),
    status_code=201,
    summary="Request a waiver (someone else must approve it)",
)
def request_waiver(
    request: Request, body: WaiverRequest, caller: Annotated[Caller, Depends(waive_access)]
) -> dict[str, Any]:
    scope = {key: value for key, value in body.scope.model_dump().items() if value}
    return changing(
        request,
        lambda c, now: waiver_store.request(
            c,
            check_id=body.check,
            policy_id=body.policy,
            scope=scope,
            justification=body.justification,
            expires=body.expires,
            requested_by=caller.user,
            now=now,
            ticket=body.ticket,
            waiver_id=body.id,
            known_checks=policy_store.known_checks(c),
            actor=actor(caller),
        ),
    )


@router.post(
    "/waivers/{waiver_id}/approve",
    responses=error_responses(404, 409),
    summary="Approve a waiver requested by someone else",
)
def approve_waiver(
    request: Request, waiver_id: str, caller: Annotated[Caller, Depends(waive_access)]
) -> dict[str, Any]:
    return changing(
        request, lambda c, now: waiver_store.approve(c, waiver_id, approver=caller.user, now=now, actor=actor(caller))
    )


@router.post("/waivers/{waiver_id}/reject", responses=error_responses(404, 409), summary="Reject a waiver request")
def reject_waiver(request: Request, waiver_id: str, caller: Annotated[Caller, Depends(waive_access)]) -> dict[str, Any]:
    return changing(
        request,
        lambda c, now: waiver_store.close(c, waiver_id, by=caller.user, now=now, action="reject", actor=actor(caller)),
    )


@router.post(
    "/waivers/{waiver_id}/revoke",
    responses=error_responses(404, 409),
    summary="Revoke an approved waiver (its results return to their status)",
)
def revoke_waiver(request: Request, waiver_id: str, caller: Annotated[Caller, Depends(waive_access)]) -> dict[str, Any]:
    return changing(
        request,
        lambda c, now: waiver_store.close(c, waiver_id, by=caller.user, now=now, action="revoke", actor=actor(caller)),
    )
