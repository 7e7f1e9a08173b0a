"""PostgreSQL restarted (and its connections terminated) under load, and a collector replica killed while
another keeps serving behind HAProxy. Both on a PostgreSQL server of the test's own (the shared one is
never restarted), with real agents draining backlogs through their worker processes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.agent.e2e import EnrolledAgent
from tests.reliability.accounting import agent_books, collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import Deliveries, enrol_fleet, spool_backlog, template_report, templated
from tests.reliability.pgserver import PrivatePostgres
from tests.reliability.services import ReportCounter, kill_collector, log_entries, port_of, tracebacks, wait_for
from tests.support.collector import RunningCollector, init_collector
from tests.support.haproxy import HAPROXY, HAProxy

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def backlogs(agents: list[EnrolledAgent], per_agent: int) -> int:
    template = template_report(agents[0])
    for agent in agents:
        spool_backlog(agent, per_agent, span=dt.timedelta(days=2), template=templated(template, agent.agent_id))
    return len(agents) * per_agent


def ready(collector: RunningCollector, url: str) -> bool:
    try:
        with requests.Session() as session:
            session.trust_env = False
            return session.get(url + "/readyz", verify=collector.ca_file, timeout=5).status_code == 200
    except requests.RequestException:
        return False


class Steps:
    """Faults fired in order, each when its condition holds (an event: a count reached, a server seen down)."""

    def __init__(self, steps: list[tuple[str, Callable[[], bool], Callable[[], object]]]) -> None:
        self.steps = steps
        self.done: list[str] = []

    def __call__(self) -> None:
        if len(self.done) < len(self.steps):
            name, when, action = self.steps[len(self.done)]
            if when():
                action()
                self.done.append(name)


@pytest.mark.timeout(600)
def test_postgresql_restarted_and_connections_terminated_under_load(
    tmp_path: Path, private_pg: PrivatePostgres, private_pg_url: str, figures: Figures
) -> None:
    """PostgreSQL connections terminated twice and the server restarted under load: nothing lost."""
    collector = init_collector(tmp_path / "collector", database_url=private_pg_url, config={"db_pool_size": 4})
    database = private_pg_url.rsplit("/", 1)[1].split("?")[0]
    terminated: list[int] = []
    try:
        collector.url = collector.start(port=port_of(collector.url))
        agents = enrol_fleet(collector, tmp_path / "fleet", 8, drain_rate=10, request_attempts=3)
        total = backlogs(agents, 20)
        counter = ReportCounter(private_pg_url)

        def terminate() -> None:
            terminated.append(private_pg.terminate_connections(database))

        steps = Steps(
            [
                ("terminate", lambda: counter() >= total * 0.25, terminate),
                ("restart", lambda: counter() >= total * 0.5, private_pg.restart),
                ("terminate again", lambda: counter() >= total * 0.75, terminate),
            ]
        )
        deliveries = Deliveries(agents, parallel=4)
        try:
            deliveries.run(300, between=steps)
        finally:
            deliveries.stop()
            counter.close()
        assert steps.done == ["terminate", "restart", "terminate again"]
        wait_for(lambda: ready(collector, collector.url), 60, "the collector to be ready again without a hand")
        books = collector_books(private_pg_url)
        settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
        log = collector.log()
    finally:
        collector.stop()
    statuses = [
        e["status"] for e in log_entries(collector) if e.get("msg") == "request" and e.get("path") == "/api/v1/reports"
    ]
    figures.set(
        faults_injected=len(steps.done),
        connections_terminated=sum(terminated),
        reports_spooled=total,
        answered_503=statuses.count(503),
        answered_500=statuses.count(500),
        **deliveries.figures(),
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert settlement.figures["reports_stored"] == total
    unhandled = [e.get("exc", "")[-300:] for e in log_entries(collector) if e.get("msg") == "unhandled error"]
    # A report arriving while the server restarts gets 503 with Retry-After (the agent sends it again), never
    # a 500: the books above show it was not lost either way.
    assert statuses.count(500) == 0, unhandled[:1]
    assert tracebacks(log) == []


@pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed")
@pytest.mark.timeout(600)
def test_a_replica_killed_behind_haproxy_while_the_other_serves(
    tmp_path: Path, private_pg_url: str, figures: Figures
) -> None:
    """One of two collector replicas SIGKILLed behind HAProxy and restarted: the other serves, nothing lost."""
    collector = init_collector(tmp_path / "collector", database_url=private_pg_url, config={"db_pool_size": 4})
    first, second = collector.start(), collector.start()
    balancer = HAProxy([port_of(first), port_of(second)], collector.ca_file, tmp_path / "haproxy").start()
    try:
        wait_for(lambda: balancer.servers_up() == {"c1", "c2"}, 30, "both replicas up in HAProxy")
        agents = enrol_fleet(collector, tmp_path / "fleet", 10, url=balancer.url, drain_rate=5, request_attempts=3)
        total = backlogs(agents, 30)
        counter = ReportCounter(private_pg_url)
        seen_down: list[set[str]] = []
        steps = Steps(
            [
                ("kill c1", lambda: counter() >= total * 0.3, lambda: kill_collector(collector, 0)),
                ("c1 seen down", lambda: balancer.servers_up() == {"c2"}, lambda: seen_down.append({"c2"})),
                ("restart c1", lambda: counter() >= total * 0.5, lambda: collector.start(port=port_of(first))),
                ("c1 back", lambda: balancer.servers_up() == {"c1", "c2"}, lambda: None),
            ]
        )  # fmt: skip
        deliveries = Deliveries(agents, parallel=4)
        try:
            deliveries.run(300, between=steps)

            def all_steps_taken() -> bool:
                steps()
                return len(steps.done) == 4

            wait_for(all_steps_taken, 60, "the restarted replica back in HAProxy")
            restarted_pid = collector.processes[-1].pid
            # one more report from each of four agents, each on a new connection: round robin sends some
            # to the restarted replica, which must store them like the other
            extra = backlogs(agents[:4], 1)
            deliveries.run(120)
        finally:
            deliveries.stop()
            counter.close()
        books = collector_books(private_pg_url)
        settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
        log = collector.log()
    finally:
        balancer.stop()
        collector.stop()
    served = [
        e.get("pid") for e in log_entries(collector) if e.get("msg") == "request" and e.get("path") == "/api/v1/reports"
    ]
    figures.set(
        faults_injected=1,
        replicas=2,
        reports_spooled=total + extra,
        reports_by_restarted_replica=served.count(restarted_pid),
        **deliveries.figures(),
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert settlement.figures["reports_stored"] == total + extra
    assert served.count(restarted_pid) >= 1
    assert tracebacks(log) == []
