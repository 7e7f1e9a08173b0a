"""The OpenAPI document declares the answers the routes give (tests/fuzz/test_api_schema.py checks every
answer against it; this is the fast check that the declarations are there)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.live import LiveCollector


@pytest.fixture
def document(live: LiveCollector) -> dict[str, Any]:
    response = live.session().get(live.url + "/api/v1/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    declared: dict[str, Any] = document["paths"][path][method]["responses"]
    return declared


def test_every_api_route_declares_its_refusals_with_the_error_body(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            declared = operation["responses"]
            assert "422" not in declared, f"{method} {path}: validation errors are answered 400"
            for status in ("400", "401", "403", "503"):
                schema = declared[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            if "{" in path:
                assert "404" in declared, f"{method} {path}"
    body = document["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["code", "message"] and body["additionalProperties"] is True


def test_non_json_answers_are_declared_with_their_media_types(document: dict[str, Any]) -> None:
    assert set(responses(document, "get", "/api/v1/export/results")["200"]["content"]) == {
        "text/csv",
        "application/x-ndjson",
    }
    assert set(responses(document, "get", "/api/v1/briefing")["200"]["content"]) == {"text/html", "application/pdf"}
    assert set(responses(document, "get", "/api/v1/evidence")["200"]["content"]) == {"application/zip"}
    assert set(responses(document, "get", "/metrics")["200"]["content"]) == {"text/plain"}
    assert "503" in responses(document, "get", "/readyz")
    assert "429" in responses(document, "post", "/api/v1/enroll")
    assert "409" in responses(document, "post", "/api/v1/users")
