"""The collector slow, overloaded or answering what it should not: 500, 502 pages in HTML, 503 and 429 with
and without Retry-After (in seconds and as an HTTP date), answers held past the agent's read timeout, and
200s that are not the collector's acknowledgement (a captive portal's page, an empty JSON object).

Each scenario puts the fault proxy (tests/agent/faultproxy.py) between a real agent and a real collector,
lets the agent drain a backlog through its own worker processes, and ends with the same accounting.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.e2e import EnrolledAgent
from tests.agent.faultproxy import Fault, Hold
from tests.reliability.accounting import agent_books, collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import Deliveries, enrol_fleet, spool_backlog, template_report, templated
from tests.reliability.proxy import RawAnswer, ReliabilityProxy
from tests.reliability.services import database_url
from tests.support.collector import RunningCollector, collector_process

pytestmark = [pytest.mark.slow, pytest.mark.fault]

REPORTS = "/api/v1/reports"
BACKLOG = 5


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Callable[[ReliabilityProxy], int]  # arms the proxy; returns how many faults it will inject
    wait_s: float = 0.0  # the agent must wait at least this long after a faulted answer
    agent: tuple[tuple[str, object], ...] = ()


def faults(status: int, count: int, headers: dict[str, str] | None = None) -> Callable[[ReliabilityProxy], int]:
    def arm(proxy: ReliabilityProxy) -> int:
        proxy.faults.append(Fault("POST", REPORTS, status, headers or {}, count=count))
        return count

    return arm


def raw(status: int, body: bytes, *, forward_first: bool, count: int = 2, json: bool = False) -> Callable[..., int]:
    def arm(proxy: ReliabilityProxy) -> int:
        headers = {"Content-Type": "application/json" if json else "text/html; charset=utf-8"}
        proxy.raw.append(RawAnswer("POST", REPORTS, status, body, headers, forward_first=forward_first, count=count))
        return count

    return arm


def held(seconds: float, count: int) -> Callable[[ReliabilityProxy], int]:
    def arm(proxy: ReliabilityProxy) -> int:
        proxy.holds.append(Hold("POST", REPORTS, seconds=seconds, count=count))
        return count

    return arm


def http_date_in(seconds: int) -> Callable[[ReliabilityProxy], int]:
    def arm(proxy: ReliabilityProxy) -> int:
        when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds), usegmt=True)
        proxy.faults.append(Fault("POST", REPORTS, 429, {"Retry-After": when}, count=1))
        return 1

    return arm


CAPTIVE_PORTAL = b"<!doctype html><html><body><h1>Welcome</h1><p>Please sign in to the guest network.</p></body></html>"

SCENARIOS = [
    Scenario("500", faults(500, 3)),
    Scenario("503-retry-after", faults(503, 2, {"Retry-After": "2"}), wait_s=2),
    Scenario("503-without-retry-after", faults(503, 3)),
    Scenario("429-retry-after", faults(429, 2, {"Retry-After": "2"}), wait_s=2),
    Scenario("429-retry-after-http-date", http_date_in(3), wait_s=1.5),
    Scenario("429-without-retry-after", faults(429, 3)),
    Scenario("502-html-page", raw(502, b"<html><body>502 Bad Gateway</body></html>", forward_first=False)),
    # the collector stored it, the answer got lost in a proxy that timed out
    Scenario("slow-past-read-timeout", held(4, 2), agent=(("read_timeout", "1.5s"),)),
    # the collector stored it, and something on the way replaced its answer
    Scenario("non-json-200-after-the-collector-stored", raw(200, CAPTIVE_PORTAL, forward_first=True)),
    # a 200 that is not the collector's acknowledgement: the report stays and is sent again (was lost before
    # the agent required the documented acknowledgement, issue 13)
    Scenario("non-json-200-instead-of-the-collector", raw(200, CAPTIVE_PORTAL, forward_first=False)),
    Scenario("empty-json-200-instead-of-the-collector", raw(200, b"{}", forward_first=False, json=True)),
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    with collector_process(tmp_path_factory.mktemp("answers") / "collector") as running:
        yield running


@pytest.fixture(scope="module")
def spare_agents(
    collector: RunningCollector, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[EnrolledAgent], dict[str, Any]]:
    """One enrolled agent per scenario (each drains its own spool), and a real run of theirs as template."""
    agents = enrol_fleet(collector, tmp_path_factory.mktemp("answers-fleet"), len(SCENARIOS))
    return agents, template_report(agents[-1])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.timeout(300)
def test_collector_answers(
    scenario: Scenario,
    collector: RunningCollector,
    spare_agents: tuple[list[EnrolledAgent], dict[str, Any]],
    tmp_path: Path,
    figures: Figures,
) -> None:
    """A backlog drained through the collector's faulty answers: nothing lost, nothing twice."""
    figures.scenario = f"collector_answers-{scenario.name}"
    figures.title = f"collector answers {scenario.name.replace('-', ' ')}"
    proxy = ReliabilityProxy(collector.url, collector.ca_file, tmp_path / "proxy")
    proxy.start()
    try:
        agents, template = spare_agents
        agent = agents.pop()
        agent.reconfigure(collector_url=proxy.url, ca_cert=str(proxy.ca), **dict(scenario.agent))
        ids = spool_backlog(agent, BACKLOG, span=dt.timedelta(hours=12), template=templated(template, agent.agent_id))
        injected = scenario.inject(proxy)
        deliveries = Deliveries([agent], parallel=1)
        try:
            deliveries.run(120)
        finally:
            deliveries.stop()
        seen = proxy.requests("POST", REPORTS)
    finally:
        proxy.stop()
    ours = [r for r in collector_books(database_url(collector)).reports if r.agent_id == agent.agent_id]
    books = collector_books(database_url(collector))
    books.reports = ours
    settlement = settle([agent_books(agent.state, agent.agent_id)], books)
    faulted = [s for s in seen if s.faulted]
    figures.set(faults_injected=len(faulted), faults_armed=injected, requests_seen=len(seen), **deliveries.figures())
    figures.merge("", settlement.figures)
    settlement.check()
    assert {r.report_id for r in ours} == set(ids)
    assert len(faulted) == injected or scenario.name.startswith("slow"), (len(faulted), injected)
    if scenario.wait_s:
        # the next attempt after each asked-for wait came no earlier than the collector asked
        for answer in faulted:
            after = [s.at for s in seen if s.at > answer.at]
            assert after and min(after) - answer.at >= scenario.wait_s - 0.2, (answer, after[:1])
    if scenario.name.startswith("slow"):
        assert deliveries.figures()["duplicates_acknowledged"] >= 1  # re-sent after the timeout, counted once
