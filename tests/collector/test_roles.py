"""Every API route checks its caller: no token 401, a bad token 401, a role without the permission 403."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.live import LiveCollector

READ, WAIVE, EXPORT, AUDIT, ADMIN = "read", "waive", "export", "audit", "admin"
ROLE_PERMISSIONS = {
    "admin": {READ, WAIVE, EXPORT, AUDIT, ADMIN},
    "analyst": {READ, WAIVE},
    "auditor": {READ, EXPORT, AUDIT},
}
# Every route of the API with the permission it needs. Path parameters name things that do not exist, and
# bodies are empty, so that an allowed call is refused for its input (400/404) and changes nothing.
ROUTES = {
    ("GET", "/api/v1/summary"): READ,
    ("GET", "/api/v1/hosts"): READ,
    ("GET", "/api/v1/hosts/{host}"): READ,
    ("GET", "/api/v1/checks/{check_id}"): READ,
    ("GET", "/api/v1/trends"): READ,
    ("GET", "/api/v1/agents"): READ,
    ("GET", "/api/v1/policies"): READ,
    ("GET", "/api/v1/waivers"): READ,
    ("POST", "/api/v1/waivers"): WAIVE,
    ("POST", "/api/v1/waivers/{waiver_id}/approve"): WAIVE,
    ("POST", "/api/v1/waivers/{waiver_id}/reject"): WAIVE,
    ("POST", "/api/v1/waivers/{waiver_id}/revoke"): WAIVE,
    ("GET", "/api/v1/export/results"): EXPORT,
    ("GET", "/api/v1/reports/{report_id}"): EXPORT,
    ("GET", "/api/v1/audit"): AUDIT,
    ("GET", "/api/v1/briefing"): EXPORT,
    ("GET", "/api/v1/evidence"): EXPORT,
    ("POST", "/api/v1/enroll-tokens"): ADMIN,
    ("GET", "/api/v1/enroll-tokens"): ADMIN,
    ("DELETE", "/api/v1/enroll-tokens/{token_id}"): ADMIN,
    ("POST", "/api/v1/agents/{agent_id}/revoke"): ADMIN,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{name}/disable"): ADMIN,
    ("POST", "/api/v1/users/{name}/enable"): ADMIN,
    ("POST", "/api/v1/api-tokens"): ADMIN,
    ("GET", "/api/v1/api-tokens"): ADMIN,
    ("DELETE", "/api/v1/api-tokens/{token_id}"): ADMIN,
    ("POST", "/api/v1/policies"): ADMIN,
    ("PUT", "/api/v1/policies/{policy_id}/groups/{group}"): ADMIN,
    ("DELETE", "/api/v1/policies/{policy_id}/groups/{group}"): ADMIN,
}
OPERATIONS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
AGENT_ROUTES = {
    ("POST", "/api/v1/enroll"),
    ("POST", "/api/v1/checkin"),
    ("GET", "/api/v1/policy"),
    ("POST", "/api/v1/reports"),
}


# Routes that would do real work when called without input get input they refuse.
REFUSED_QUERY = {"/api/v1/briefing": {"quarter": "not-a-quarter"}, "/api/v1/evidence": {"as_of": "not-a-date"}}


def concrete(path: str) -> str:
    return path.replace("{", "no-such-").replace("}", "")


def call(session: requests.Session, live: LiveCollector, method: str, path: str) -> requests.Response:
    body: dict[str, object] | None = {} if method in ("POST", "PUT") else None
    return session.request(method, live.url + concrete(path), json=body, params=REFUSED_QUERY.get(path))


def test_the_table_covers_every_route_in_the_openapi_document(live: LiveCollector) -> None:
    document = live.session().get(live.url + "/api/v1/openapi.json").json()
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert served == set(ROUTES) | AGENT_ROUTES | OPERATIONS
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# One bad token per route, from one address: more than the default limit of bad tokens (429).
@pytest.mark.parametrize("live_config", [{"api_auth_failures_per_minute": 1000}])
def test_every_route_refuses_callers_without_a_valid_token(live: LiveCollector) -> None:
    anonymous = live.session()
    wrong = live.session("rpa_not-a-token")
    for method, path in ROUTES:
        missing = call(anonymous, live, method, path)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.json()["code"] == "unauthenticated"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        bad = call(wrong, live, method, path)
        assert bad.status_code == 401 and bad.json()["code"] == "bad_api_token", (method, path)


def test_every_route_allows_exactly_the_roles_with_its_permission(live: LiveCollector) -> None:
    admin = live.admin()
    sessions = {}
    for role in ROLE_PERMISSIONS:
        name = f"{role}-user"
        assert admin.post(live.url + "/api/v1/users", json={"name": name, "role": role}).status_code == 201
        token = admin.post(live.url + "/api/v1/api-tokens", json={"user": name}).json()["token"]
        sessions[role] = live.session(token)
    for (method, path), permission in ROUTES.items():
        for role, session in sessions.items():
            response = call(session, live, method, path)
            if permission in ROLE_PERMISSIONS[role]:
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["code"] == "forbidden"


def test_revoked_and_disabled_tokens_stop_working(live: LiveCollector) -> None:
    admin = live.admin()
    admin.post(live.url + "/api/v1/users", json={"name": "dave", "role": "auditor"})
    first = admin.post(live.url + "/api/v1/api-tokens", json={"user": "dave"}).json()
    second = admin.post(live.url + "/api/v1/api-tokens", json={"user": "dave", "expires_in": "1s"}).json()
    dave = live.session(first["token"])
    assert dave.get(live.url + "/api/v1/summary").status_code == 200
    assert admin.delete(live.url + f"/api/v1/api-tokens/{first['id']}").status_code == 200
    assert dave.get(live.url + "/api/v1/summary").status_code == 401
    time.sleep(1.1)
    assert live.session(second["token"]).get(live.url + "/api/v1/summary").status_code == 401  # expired
    third = admin.post(live.url + "/api/v1/api-tokens", json={"user": "dave"}).json()
    assert admin.post(live.url + "/api/v1/users/dave/disable").status_code == 200
    assert live.session(third["token"]).get(live.url + "/api/v1/summary").status_code == 401
    listed = admin.get(live.url + "/api/v1/api-tokens", params={"user": "dave"}).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)


def test_operations_endpoints_need_no_token(live: LiveCollector) -> None:
    anonymous = live.session()
    assert anonymous.get(live.url + "/healthz").status_code == 200
    assert anonymous.get(live.url + "/readyz").json()["status"] == "ready"
    metrics = anonymous.get(live.url + "/metrics")
    assert metrics.status_code == 200 and "rampart_http_requests_total" in metrics.text


@pytest.mark.parametrize("live_config", [{"max_body_bytes": 2000}])
def test_bodies_of_api_calls_are_limited_too(live: LiveCollector) -> None:
    admin = live.admin()
    big = {"yaml": "x" * 5000}
    refused = admin.post(live.url + "/api/v1/policies", json=big)
    assert refused.status_code == 413 and refused.json()["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(10):
            yield b" " * 500

    streamed = admin.post(live.url + "/api/v1/policies", data=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"
    assert admin.get(live.url + "/api/v1/policies").status_code == 200
