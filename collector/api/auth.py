"""API tokens and roles: `Authorization: Bearer <token>`; each route names the permission it needs.

admin: everything; analyst: read and waivers; auditor: read, export and the audit log.
An address that sent api_auth_failures_per_minute bad tokens gets 429 until its bucket refills
(collector/api/ratelimit.py), before its token is even looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collector.api.errors import ApiError
from collector.api.ratelimit import client_key, retry_after
from collector.api.state import AppState
from collector.security import Permission, allowed
from collector.storage import users
from collector.storage.engine import read_tx
from collector.storage.users import Caller

bearer = HTTPBearer(auto_error=False, description="An API token from `rampart-collector api-token create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(permission: Permission) -> Callable[..., Caller]:
    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Caller:
        state: AppState = request.app.state.rampart
        if (credentials is None or not credentials.credentials) and request.method == "GET":
            # A download linked from the dashboard: its session stands for a token. GET only, so that no
            # other site can make a signed-in browser change anything (changes need a CSRF-checked form).
            caller = dashboard_caller(request)
            if caller is not None:
                return _permitted(request, caller, permission)
        if credentials is None or not credentials.credentials:
            raise ApiError(
                401, "unauthenticated", "send an API token: Authorization: Bearer <token>", headers=_CHALLENGE
            )
        failures = state.auth_failures
        address = client_key(request.client.host if request.client else "")
        if failures is not None:
            wait = failures.waiting(address)
            if wait:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many calls with a bad API token from this address; retry in {retry_after(wait)}s",
                    headers={"Retry-After": retry_after(wait)},
                    retry_after_s=int(retry_after(wait)),
                )
        with read_tx(state.engine) as connection:
            caller = users.authenticate(connection, credentials.credentials, state.now())
        if caller is None:
            if failures is not None:
                failures.spend(address)
            raise ApiError(401, "bad_api_token", "the API token is unknown, revoked or expired", headers=_CHALLENGE)
        return _permitted(request, caller, permission)

    return dependency


def dashboard_caller(request: Request) -> Caller | None:
    """The dashboard session of this request, as an API caller (None when signed out)."""
    from collector.dashboard.session import session_of

    user = session_of(request)
    return None if user is None else Caller(user=user.user, role=user.role, token_id=f"session:{user.session_id[:8]}")


def _permitted(request: Request, caller: Caller, permission: Permission) -> Caller:
    request.state.actor = f"user:{caller.user}"
    if not allowed(caller.role, permission):
        raise ApiError(
            403,
            "forbidden",
            f"the {caller.role} role may not do this (it needs the {permission.value} permission)",
            permission=permission.value,
        )
    return caller


read_access = require(Permission.READ)
waive_access = require(Permission.WAIVE)
export_access = require(Permission.EXPORT)
audit_access = require(Permission.AUDIT)
admin_access = require(Permission.ADMIN)
