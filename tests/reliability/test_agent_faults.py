"""Faults on the agent's side: its disk full while it spools, its worker SIGKILLed while it spools and while
it delivers a backlog, and its clock minutes off in both directions. Real agents, a real collector, the
same accounting at the end of each.

The agent's own fault tests (tests/agent/test_e2e_faults.py) show single kills and a full spool; these
add the full disk, kills through a long drain, skewed clocks, and the shared books.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.e2e import EnrolledAgent
from tests.agent.helpers import ROOT, clean_env
from tests.reliability.accounting import AgentBooks, agent_books, agent_books_from_json, collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import (
    WORKER,
    Deliveries,
    enrol_fleet,
    run_worker,
    spool_backlog,
    template_report,
    templated,
    worker,
)
from tests.reliability.services import ReportCounter, database_url, log_entries, port_of, tracebacks, wait_for
from tests.reliability.smalldisk import SmallDisk, SmallDiskUnavailable
from tests.support.collector import RunningCollector, collector_process

pytestmark = [pytest.mark.slow, pytest.mark.fault]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    with collector_process(tmp_path / "collector") as running:
        yield running


def books_inside(disk: SmallDisk, state: Path, agent_id: str) -> AgentBooks:
    """The agent's books read in its namespace (SQLite resolves /proc/<pid>/root to the machine's root)."""
    done = disk.inside(
        sys.executable, "-m", "tests.reliability.accounting", str(state), agent_id, env=clean_env(PYTHONPATH=str(ROOT))
    )
    assert done.returncode == 0, done.stderr
    return agent_books_from_json(done.stdout)


@pytest.mark.timeout(300)
def test_a_full_disk_while_spooling_is_reported_and_loses_nothing_collected(
    tmp_path: Path, collector: RunningCollector, figures: Figures
) -> None:
    """The agent's disk full while it spools: a clear error, the spool intact, all delivered once freed."""
    (enrolled,) = enrol_fleet(collector, tmp_path / "fleet", 1)
    try:
        disk = SmallDisk(tmp_path / "small", size_kb=1024)
    except SmallDiskUnavailable as exc:
        pytest.skip(str(exc))
    try:
        inside = disk.mountpoint / "state"
        shutil.copytree(enrolled.state, disk.outside(inside))
        agent = EnrolledAgent(enrolled.config, disk.outside(inside), enrolled.agent_id)
        enrolled.reconfigure(state_dir=str(inside), request_attempts=1)
        launcher = ["nsenter", "-t", str(disk.holder.pid), "-m", "--", *WORKER]
        port = port_of(collector.url)
        collector.stop()  # the runs below spool and cannot deliver
        spooled = [run_worker(agent.config, "run", launcher=launcher) for _ in range(2)]
        assert all(s.get("pending") for s in spooled), spooled
        filled = disk.fill()
        failed = [run_worker(agent.config, "run", launcher=launcher) for _ in range(2)]
        disk.free()  # (the spool cannot even be opened on a full disk: its books are read once there is room)
        books_full = books_inside(disk, inside, agent.agent_id)
        collector.start(port=port)
        deliveries = Deliveries([agent], launchers={agent.agent_id: launcher})
        deliveries.run(120)
        after = run_worker(agent.config, "run", launcher=launcher)  # a run once there is room again
    finally:
        disk.close()
    assert after["exit_code"] == 0 and after["delivered"] == 1, after
    for summary in failed:
        assert summary["exit_code"] == 1, summary
        # the error says what is wrong, not only where (the path itself contains "full": leave it out)
        said = summary["error"].replace(str(inside), "STATE").lower()
        assert "disk holding it is full" in said or "disk is full" in said, summary
        assert "Traceback" not in summary["stderr"], summary["stderr"]
    assert books_full.integrity == "ok"
    assert len(books_full.spooled_ids) == 2  # what was committed before the disk filled is still there
    # the runs that could not be committed were never counted as collected: nothing was silently lost
    assert books_full.collected_results == books_full.spooled_results
    # agent.state is the namespace's view and went with it: count from the collector and the summaries
    stored = [r for r in collector_books(database_url(collector)).reports if r.agent_id == agent.agent_id]
    figures.set(
        faults_injected=len(failed),
        disk_bytes_filled=filled,
        runs_refused_for_space=len(failed),
        reports_spooled_before=len(books_full.spooled_ids),
        reports_stored=len(stored),
        lost=len(books_full.spooled_ids) + 1 - len(stored),
    )
    assert len(stored) == 3 and len({r.report_id for r in stored}) == 3


@pytest.mark.timeout(420)
def test_the_agent_sigkilled_mid_spool_and_mid_delivery_loses_nothing(
    tmp_path: Path, collector: RunningCollector, figures: Figures
) -> None:
    """Runs SIGKILLed at random moments, and a backlog's delivery SIGKILLed again and again mid-drain."""
    agents = enrol_fleet(collector, tmp_path / "fleet", 2, drain_rate=8)
    runner, drainer = agents
    rng = random.Random(16)
    counter = ReportCounter(database_url(collector))
    kills_in_runs = kills_in_drain = 0
    try:
        # mid-spool: kill `run` workers at random moments of their runs (start-up, probing, committing, sending)
        began = time.monotonic()
        run_worker(runner.config, "run")
        run_s = time.monotonic() - began
        for _ in range(8):
            process = worker(runner.config, "run")
            time.sleep(rng.uniform(0.05, 1.0) * run_s)
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            kills_in_runs += 1
            assert agent_books(runner.state, runner.agent_id).integrity == "ok"
        # mid-delivery: a backlog of 60, its drain killed each time the collector has stored 6 more
        spool_backlog(
            drainer, 60, span=dt.timedelta(days=2), template=templated(template_report(runner), drainer.agent_id)
        )
        while agent_books(drainer.state, drainer.agent_id).spooled_ids and kills_in_drain < 8:
            target = counter() + 6
            process = worker(drainer.config, "deliver")
            try:

                def stored_or_ended(target: int = target, process: subprocess.Popen[str] = process) -> bool:
                    return counter() >= target or process.poll() is not None

                wait_for(stored_or_ended, 60, "six more reports stored")
            finally:
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=30)
            kills_in_drain += 1
        deliveries = Deliveries(agents)
        deliveries.run(180)
    finally:
        counter.close()
    books = collector_books(database_url(collector))
    settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
    figures.set(
        faults_injected=kills_in_runs + kills_in_drain,
        kills_mid_run=kills_in_runs,
        kills_mid_drain=kills_in_drain,
        **deliveries.figures(),
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert kills_in_drain >= 5


@pytest.mark.parametrize("offset_s", [-7 * 60, 11 * 60], ids=["7-minutes-behind", "11-minutes-ahead"])
@pytest.mark.timeout(300)
def test_agent_clocks_minutes_off(offset_s: int, tmp_path: Path, collector: RunningCollector, figures: Figures) -> None:
    """An agent whose clock is minutes off (beyond the allowed skew) corrects itself and delivers once."""
    figures.scenario = f"agent_clock_{'behind' if offset_s < 0 else 'ahead'}_{abs(offset_s) // 60}_minutes"
    agents = enrol_fleet(collector, tmp_path / "fleet", 2)
    template = template_report(agents[0])
    launcher = [sys.executable, "-m", "tests.reliability.skewed_worker", str(offset_s)]
    for agent in agents:
        spool_backlog(agent, 10, span=dt.timedelta(hours=6), template=templated(template, agent.agent_id))
    deliveries = Deliveries(agents, launchers={a.agent_id: launcher for a in agents})
    deliveries.run(120)
    # later workers start from the offset the first one learnt: no second refusal
    for agent in agents:
        spool_backlog(agent, 3, span=dt.timedelta(minutes=30), template=templated(template, agent.agent_id))
    before = len([e for e in log_entries(collector) if e.get("status") == 401])
    deliveries.run(120)
    entries = list(log_entries(collector))
    refusals = [e for e in entries if e.get("msg") == "request" and e.get("status") == 401]
    books = collector_books(database_url(collector))
    settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
    figures.set(
        clock_offset_s=offset_s,
        stale_timestamp_refusals=len(refusals),
        refusals_after_learning=len(refusals) - before,
        **deliveries.figures(),
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert 1 <= len(refusals) <= len(agents)  # at most the first request of each agent
    assert len(refusals) == before
    assert tracebacks(collector.log()) == []
