"""The collector killed (SIGKILL) in the middle of ingest from many agents, and started again.

Twelve real agents each hold three days of backlog in their spools and deliver it through their own
worker processes, six at a time, rescheduled as the daemon reschedules them. The collector is SIGKILLed
twice while reports are arriving (when 30% and when 70% are stored: events, not moments) and started
again on the same port. Every acknowledged report must be stored exactly once, every collected result
delivered, and the collector's counters must agree with its latest results.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.reliability.accounting import agent_books, collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import Deliveries, enrol_fleet, spool_backlog, template_report, templated
from tests.reliability.services import (
    ReportCounter,
    database_url,
    kill_collector,
    port_of,
    request_log,
    tracebacks,
)
from tests.support.collector import collector_process

pytestmark = [pytest.mark.slow, pytest.mark.fault]

AGENTS = 12
BACKLOG = 15  # reports per agent: three days of runs every ~5 hours


@pytest.mark.timeout(600)
def test_collector_sigkilled_mid_ingest_from_many_agents_loses_nothing(tmp_path: Path, figures: Figures) -> None:
    """Collector SIGKILLed twice mid-ingest from 12 agents and restarted: every report stored once."""
    with collector_process(tmp_path / "collector") as collector:
        agents = enrol_fleet(collector, tmp_path / "fleet", AGENTS, drain_rate=20, request_attempts=2)
        base = template_report(agents[0])
        for agent in agents:
            spool_backlog(agent, BACKLOG, span=dt.timedelta(days=3), template=templated(base, agent.agent_id))
        counter = ReportCounter(database_url(collector))
        total = AGENTS * BACKLOG
        kills: list[int] = []
        port = port_of(collector.url)

        def crash_when_due() -> None:
            stored = counter()
            threshold = (0.3, 0.7)[len(kills)] if len(kills) < 2 else None
            if threshold is not None and stored >= threshold * total:
                kill_collector(collector)
                kills.append(stored)
                collector.start(port=port)

        deliveries = Deliveries(agents, parallel=6)
        try:
            deliveries.run(300, between=crash_when_due)
        finally:
            deliveries.stop()
            counter.close()
        assert len(kills) == 2, f"the collector was not killed twice (stored at kills: {kills})"
        books = collector_books(database_url(collector))
        settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
        statuses = [status for _, status in request_log(collector)]
        log = collector.log()
    figures.set(
        faults_injected=len(kills),
        stored_when_killed=kills,
        reports_spooled=total,
        requests_seen=len(statuses),
        refused_5xx=sum(1 for s in statuses if s >= 500),
        **deliveries.figures(),
    )
    figures.merge("", settlement.check())
    assert figures.values["reports_stored"] == total
    assert tracebacks(log) == []
