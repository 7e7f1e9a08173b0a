"""Every route, every kind of caller: a table derived from the served OpenAPI document and the routes' own
permission dependencies, so a new route cannot escape it.

For each operation in /api/v1/openapi.json the permission it needs is read from its `require(...)`
dependency (collector/api/auth.py); agent routes are recognised as signed, the operations endpoints as
public. Then every API route is called with no token, with garbage tokens of many shapes, with a revoked,
an expired and a disabled user's token, and with each role's token: the answer must be 401 for every bad
token, 403 exactly for the roles without the permission, and never a 5xx. Agent routes refuse API tokens.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute

from collector.api import agents as agent_routes
from collector.security import ROLE_PERMISSIONS, Permission, Role
from tests.reliability.figures import Figures
from tests.security.conftest import Callers
from tests.support.live import LiveCollector

pytestmark = [pytest.mark.security, pytest.mark.slow]

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
GARBAGE_TOKENS = [
    "rpa_not-a-token",
    "rpa_",
    "x",
    "rpa_" + "A" * 4096,
    "rpa_é-ünïcode",
    "rpa_' OR '1'='1",
    "rpa_%00",
    "rpe_" + "B" * 43,  # an enrolment token's shape, not an API token
    "Bearer rpa_twice",
]
GARBAGE_HEADERS = [
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "bearer rpa_lowercase-scheme"},
    {"Authorization": "Token rpa_wrong-scheme"},
]


@pytest.fixture
def live_settings() -> dict[str, Any]:
    # Hundreds of bad-token calls from one address: the throttle (tested in tests/collector) would turn
    # them into 429 after the first 30 and hide the answer each route itself gives.
    return {"api_auth_failures_per_minute": 1_000_000}


def permission_of(route: APIRoute) -> Permission | None:
    """The permission a route's `require(...)` dependency asks for (None: the route has none)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        pending.extend(dependency.dependencies)
        for cell in getattr(dependency.call, "__closure__", None) or ():
            if isinstance(cell.cell_contents, Permission):
                return cell.cell_contents
    return None


def route_table(live: LiveCollector) -> dict[tuple[str, str], Permission | str]:
    """(method, path) -> the permission it needs, "signed" (agent protocol) or "public"; from the served
    document, so that every operation it lists is in the table."""
    document = live.session().get(live.url + "/api/v1/openapi.json").json()
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    from collector.api import admin, query, reports
    from collector.api.app import create_app

    app = create_app(live.config, live.engine, run_jobs=False)
    declared: dict[tuple[str, str], Permission | str] = {}
    # the app's own routes, and those of the routers it includes (FastAPI wraps included routers)
    for route in [
        *app.routes,
        *agent_routes.router.routes,
        *query.router.routes,
        *admin.router.routes,
        *reports.router.routes,
    ]:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            key = (method, route.path)
            permission = permission_of(route)
            if permission is not None:
                declared[key] = permission
            elif route.path in agent_routes.AGENT_PATHS:
                declared[key] = "signed"
            elif key in PUBLIC:
                declared[key] = "public"
    unclassified = served - set(declared)
    assert not unclassified, f"routes with no permission, not signed and not public: {sorted(unclassified)}"
    return {key: declared[key] for key in served}


def concrete(path: str) -> str:
    return path.replace("{", "no-such-").replace("}", "")


def call(live: LiveCollector, method: str, path: str, headers: dict[str, str]) -> requests.Response:
    session = live.session()
    body: Any = {} if method in ("POST", "PUT") else None
    return session.request(method, live.url + concrete(path), json=body, headers=headers)


def test_every_route_refuses_every_bad_caller_and_allows_exactly_its_roles(
    live: LiveCollector, callers: Callers, figures: Figures
) -> None:
    """Every route x (no token, 14 bad tokens, revoked, expired, disabled, each role): 401/403 as due, no 5xx."""
    table = route_table(live)
    bad: list[dict[str, str]] = (
        [{}]
        + [{"Authorization": f"Bearer {token}"} for token in GARBAGE_TOKENS]
        + GARBAGE_HEADERS
        + [{"Authorization": f"Bearer {t}"} for t in (callers.revoked, callers.expired, callers.disabled)]
    )
    tried = 0
    for (method, path), need in sorted(table.items(), key=lambda item: item[0]):
        if need in ("public", "signed"):
            continue
        for headers in bad:
            answer = call(live, method, path, headers)
            tried += 1
            assert answer.status_code == 401, (method, path, headers, answer.status_code, answer.text[:200])
            assert answer.json()["code"] in ("unauthenticated", "bad_api_token")
        for role, token in callers.roles.items():
            answer = call(live, method, path, {"Authorization": f"Bearer {token}"})
            tried += 1
            assert answer.status_code < 500, (role, method, path, answer.text[:300])
            if need in ROLE_PERMISSIONS[Role(role)]:
                assert answer.status_code not in (401, 403), (role, method, path, answer.text[:200])
            else:
                assert answer.status_code == 403 and answer.json()["code"] == "forbidden", (role, method, path)
    figures.set(
        inputs_tried=tried,
        routes=len(table),
        api_routes=sum(1 for need in table.values() if need not in ("public", "signed")),
        agent_routes=sum(1 for need in table.values() if need == "signed"),
        public_routes=sum(1 for need in table.values() if need == "public"),
        bad_callers_per_route=len(bad),
    )


def test_agent_routes_accept_no_api_token_and_public_routes_no_more_than_health(
    live: LiveCollector, callers: Callers, figures: Figures
) -> None:
    """Agent routes want an agent's signature, not an API token; public routes show no data."""
    table = route_table(live)
    tried = 0
    for (method, path), need in table.items():
        if need == "signed":
            for headers in ({}, {"Authorization": f"Bearer {callers.roles['admin']}"}):
                answer = call(live, method, path, headers)
                tried += 1
                assert answer.status_code == 401 and answer.json()["code"] == "unsigned", (method, path)
        elif need == "public":
            answer = call(live, method, path, {})
            tried += 1
            assert answer.status_code == 200
            for secret in callers.roles.values():
                assert secret not in answer.text
    figures.set(inputs_tried=tried)
