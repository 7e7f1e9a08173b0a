"""The API fuzzed from its own OpenAPI document (Schemathesis 4), as each role and with no token.

A real `rampart-collector serve` holds an agent with results and a user of each role. For every operation
in /api/v1/openapi.json, Schemathesis generates requests from the document (valid and invalid parameters
and bodies); each is sent over HTTPS as admin, analyst, auditor and with no token. Checked on every
answer: no 5xx and no stack trace in any body (failures of the test), and whether the answer is what the
document says (its status codes, content types and schemas): those mismatches are collected per route
and must be none: the routes declare their error answers (400/401/403/404/406/408/409/413/429/503, with
the error body's schema) and their text/csv, JSON lines, HTML, PDF and zip answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.reliability.figures import Figures
from tests.support.agents import SimAgent, make_results
from tests.support.collector import RunningCollector, collector_process

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

EXAMPLES_PER_OPERATION = int(os.environ.get("RAMPART_SCHEMATHESIS_EXAMPLES") or 8)
ROLES = ("admin", "analyst", "auditor", "anonymous")
STACK_TRACE = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "psycopg.errors")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCollector, dict[str, str]]]:
    with collector_process(tmp_path_factory.mktemp("schema") / "collector") as collector:
        admin = collector.session(collector.admin_token)
        token = admin.post(collector.url + "/api/v1/enroll-tokens", json={}).json()["token"]
        agent = SimAgent(collector.url, collector.ca_file)
        assert agent.enroll(token).status_code == 201
        assert agent.report(make_results(6)).status_code == 200
        agent.session.close()
        tokens = {"admin": collector.admin_token, "anonymous": ""}
        for role in ("analyst", "auditor"):
            admin.post(collector.url + "/api/v1/users", json={"name": f"{role}-1", "role": role})
            tokens[role] = admin.post(collector.url + "/api/v1/api-tokens", json={"user": f"{role}-1"}).json()["token"]
        admin.close()
        yield collector, tokens


def failures_of(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    return [e for inner in nested for e in failures_of(inner)] if nested else [error]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.timeout(900)
def test_the_api_fuzzed_from_its_openapi_document(
    role: str, served: tuple[RunningCollector, dict[str, str]], figures: Figures
) -> None:
    """Every operation of the OpenAPI document fuzzed as this role: no 5xx, no stack trace in any answer."""
    collector, tokens = served
    session = collector.session(tokens[role] or None)
    document = session.get(collector.url + "/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    broken: list[str] = []
    undocumented: dict[str, set[str]] = {}
    statuses: dict[int, int] = {}
    tried = 0

    def fuzzer(operation: Any) -> Any:
        label = f"{operation.method.upper()} {operation.path}"

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            nonlocal tried
            tried += 1
            response = case.call(base_url=collector.url, session=session, verify=collector.ca_file, timeout=60)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            text = response.content.decode("utf-8", errors="replace")  # a PDF briefing is not UTF-8
            if any(marker in text for marker in STACK_TRACE):
                broken.append(f"{label}: a stack trace in a {response.status_code} answer: {text[:200]!r}")
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises its own failure groups
                broken.append(f"{label}: {response.status_code} {text[:200]!r} ({type(exc).__name__})")
            try:
                case.validate_response(
                    response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
                )
            except (Exception, BaseExceptionGroup) as exc:
                for failure in failures_of(exc):
                    undocumented.setdefault(label, set()).add(f"{response.status_code}: {type(failure).__name__}")

        return fuzz

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the schema does not describe well enough to call
        fuzzer(result.ok())()
    session.close()
    figures.set(
        examples=tried,
        operations=len(document["paths"]) and sum(len(item) for item in document["paths"].values()),
        role=role,
        server_errors=len(broken),
        statuses={str(k): v for k, v in sorted(statuses.items())},
        undocumented_routes=len(undocumented),
        undocumented=sorted(f"{route} ({', '.join(sorted(kinds))})" for route, kinds in undocumented.items())[:60],
    )
    assert broken == [], "\n".join(broken[:20])
    # Every answer is one the document declares: its status, its media type and (for JSON) its schema.
    assert undocumented == {}, sorted(f"{route} ({', '.join(sorted(kinds))})" for route, kinds in undocumented.items())
