"""A database that cannot be reached (restarting, failing over, cut off) gets 503 with Retry-After, not 500.

The collector reaches the shared PostgreSQL through a TCP gate (tests/support/tcpgate.py) that the test
shuts: every connection ends and new ones are hung up on, as during a restart, while the server itself
keeps serving the other suites. The report refused while the gate is shut is sent again once it opens
(what an agent does after Retry-After) and is stored exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.storage import models
from collector.storage.engine import normalise_url
from tests.support.agents import make_results
from tests.support.live import LiveCollector, live_collector
from tests.support.tcpgate import TcpGate


@pytest.fixture
def gate(pg_url: str) -> Iterator[TcpGate]:
    url = sa.engine.make_url(normalise_url(pg_url))
    with TcpGate(url.host or "127.0.0.1", url.port or 5432) as gate:
        yield gate


@pytest.fixture
def gated(tmp_path: Path, pg_url: str, gate: TcpGate) -> Iterator[LiveCollector]:
    url = sa.engine.make_url(normalise_url(pg_url)).set(host="127.0.0.1", port=gate.port)
    with live_collector(tmp_path, url.render_as_string(hide_password=False), retry_after_s=7) as collector:
        yield collector


def assert_unavailable(response: object) -> None:
    import requests

    assert isinstance(response, requests.Response)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "7"
    body = response.json()
    assert body["code"] == "database_unavailable" and body["retry_after_s"] == 7, body
    assert "Traceback" not in response.text and "psycopg" not in response.text


def test_a_report_while_the_database_is_unreachable_gets_503_and_is_stored_once_when_sent_again(
    gated: LiveCollector, gate: TcpGate
) -> None:
    agent = gated.enrolled_agent()
    assert agent.report(make_results(3)).status_code == 200  # connections made, caches filled
    body = agent.report_body(make_results(3, fail_every=2))
    gate.shut()
    try:
        assert_unavailable(agent.signed("POST", "/api/v1/reports", body))
        assert gate.refused > 0, "the collector did try the database"
    finally:
        gate.open()
    again = agent.signed("POST", "/api/v1/reports", body)  # the agent kept the report and retries
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is False
    assert gated.count(models.reports) == 2


def test_an_api_query_while_the_database_is_unreachable_gets_503(gated: LiveCollector, gate: TcpGate) -> None:
    admin = gated.admin()
    url = gated.url + "/api/v1/hosts"
    assert admin.get(url).status_code == 200
    gate.shut()
    try:
        assert_unavailable(admin.get(url))
    finally:
        gate.open()
    assert admin.get(url).status_code == 200
