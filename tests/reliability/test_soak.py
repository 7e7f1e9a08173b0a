"""Soak: agent daemons reporting through faults for minutes (an hour by hand), memory and descriptors sampled.

Four `rampart-agent run` daemons check every 4 s and deliver through the fault proxy to a real collector;
every 10 s the proxy is armed with another fault (503 with Retry-After, 500, an answer held past the read
timeout). The collector's and each daemon's resident memory and open descriptors are sampled every 5 s.
After a warm-up, neither may grow: the last third of the samples against the first. At the end the
daemons stop, what they still hold is delivered, and the books must balance.

    RAMPART_SOAK_S=3600 .venv/bin/python -m pytest tests/reliability/test_soak.py   # the hour-long run
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from statistics import median

import psutil
import pytest

from tests.agent.faultproxy import Fault, Hold
from tests.agent.test_daemon import DaemonProcess
from tests.reliability.accounting import agent_books, collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import SMALL_CHECKS, Deliveries, enrol_fleet
from tests.reliability.proxy import ReliabilityProxy
from tests.reliability.services import database_url, tracebacks
from tests.support.collector import collector_process

pytestmark = [pytest.mark.slow, pytest.mark.soak]

SOAK_S = float(os.environ.get("RAMPART_SOAK_S") or 120)
AGENTS = 4
SAMPLE_EVERY_S = 5.0
FAULT_EVERY_S = 10.0


def usage(pid: int) -> tuple[float, int]:
    """(resident MB, open descriptors) of a process and its children (a serve's workers)."""
    process = psutil.Process(pid)
    family = [process, *process.children(recursive=True)]
    rss = fds = 0
    for member in family:
        try:
            rss += member.memory_info().rss
            fds += member.num_fds()
        except psutil.NoSuchProcess:
            continue
    return rss / 2**20, fds


def own_usage(pid: int) -> tuple[float, int]:
    """(resident MB, open descriptors) of the process alone: a daemon's workers come and go."""
    process = psutil.Process(pid)
    return process.memory_info().rss / 2**20, process.num_fds()


def growth(samples: list[float]) -> tuple[float, float]:
    """(median of the first third, median of the last third) of the samples after the first quarter."""
    steady = samples[len(samples) // 4 :]
    third = max(1, len(steady) // 3)
    return median(steady[:third]), median(steady[-third:])


@pytest.mark.timeout(int(SOAK_S) + 600)
def test_soak_agents_reporting_through_faults(tmp_path: Path, figures: Figures) -> None:
    """Agent daemons report through faults for RAMPART_SOAK_S seconds: no memory or descriptor growth."""
    with collector_process(tmp_path / "collector") as collector:
        proxy = ReliabilityProxy(collector.url, collector.ca_file, tmp_path / "proxy").start()
        agents = enrol_fleet(collector, tmp_path / "fleet", AGENTS)
        for agent in agents:
            agent.reconfigure(
                collector_url=proxy.url,
                ca_cert=str(proxy.ca),
                check_intervals={"passwd-exists": "4s", "no-such-file": "4s"},
                checkin_interval="30s",
                read_timeout="2s",
                request_attempts=2,
            )
        daemons = [DaemonProcess(a.config, tmp_path / f"daemon-{i}.log") for i, a in enumerate(agents)]
        collector_pid = collector.processes[0].pid
        samples: dict[str, list[tuple[float, int]]] = {"collector": [], **{f"agent-{i}": [] for i in range(AGENTS)}}
        faults = 0
        kinds = [
            lambda: proxy.faults.append(Fault("POST", "/api/v1/reports", 503, {"Retry-After": "1"}, count=3)),
            lambda: proxy.faults.append(Fault("POST", "/api/v1/reports", 500, count=3)),
            lambda: proxy.holds.append(Hold("POST", "/api/v1/reports", seconds=3, count=2)),
        ]
        started = time.monotonic()
        next_sample = next_fault = started
        try:
            while time.monotonic() - started < SOAK_S:
                now = time.monotonic()
                if now >= next_sample:
                    samples["collector"].append(usage(collector_pid))
                    for i, daemon in enumerate(daemons):
                        assert daemon.proc.poll() is None, daemon.log()[-2000:]
                        samples[f"agent-{i}"].append(own_usage(daemon.proc.pid))
                    next_sample += SAMPLE_EVERY_S
                if now >= next_fault:
                    kinds[faults % len(kinds)]()
                    faults += 1
                    next_fault += FAULT_EVERY_S
                time.sleep(0.2)
        finally:
            codes = [daemon.stop() for daemon in daemons]
        proxy.faults.clear()
        proxy.holds.clear()
        deliveries = Deliveries(agents)
        deliveries.run(120)  # what the daemons still held when they stopped
        proxy.stop()
        settlement = settle(
            [agent_books(a.state, a.agent_id) for a in agents], collector_books(database_url(collector))
        )
        log = collector.log()
    collector_rss = growth([rss for rss, _ in samples["collector"]])
    collector_fds = growth([float(fds) for _, fds in samples["collector"]])
    agent_rss = [growth([rss for rss, _ in samples[f"agent-{i}"]]) for i in range(AGENTS)]
    agent_fds = [growth([float(fds) for _, fds in samples[f"agent-{i}"]]) for i in range(AGENTS)]
    figures.set(
        soak_s=round(SOAK_S),
        samples=len(samples["collector"]),
        faults_injected=faults,
        collector_rss_mb=[round(v, 1) for v in collector_rss],
        agent_rss_mb=[round(max(a for a, _ in agent_rss), 1), round(max(b for _, b in agent_rss), 1)],
        collector_fds=[int(v) for v in collector_fds],
        agent_fds=[int(max(a for a, _ in agent_fds)), int(max(b for _, b in agent_fds))],
        results_per_report=SMALL_CHECKS,
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert codes == [0] * AGENTS
    assert settlement.figures["reports_stored"] >= AGENTS * 2  # every daemon kept reporting through the faults
    first, last = collector_rss
    assert last <= first * 1.15 + 8, f"collector memory grew from {first:.1f} to {last:.1f} MB"
    assert collector_fds[1] <= collector_fds[0] + 8
    for (first, last), (fds_first, fds_last) in zip(agent_rss, agent_fds, strict=True):
        assert last <= first * 1.10 + 2, f"an agent daemon grew from {first:.1f} to {last:.1f} MB"
        assert fds_last <= fds_first + 2
    assert tracebacks(log) == []
    for daemon in daemons:
        assert "Traceback" not in daemon.log()
