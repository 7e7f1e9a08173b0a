"""A backlog of days delivered after an outage by hundreds of agents: bounded drain, no thundering herd.

200 enrolled agents each hold two days of runs (8 reports). The collector is down; every agent tries,
fails and backs off (with jitter); then the collector comes back. The agents' own delivery code (hosted
by tests/reliability/herd_driver.py, one thread per agent) drains the backlog. Measured: the peak rate of
requests the collector sees and of reports it stores, how many it turned away (503 with Retry-After),
how long the drain took. Checked: every report stored once; no agent sent faster than its drain_rate;
after a 503 no agent came back sooner than its Retry-After; requests per report stay bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.helpers import ROOT, clean_env
from tests.reliability.accounting import agent_books, collector_books, peak_rate, settle
from tests.reliability.figures import Figures
from tests.reliability.fleet import enrol_fleet, run_worker, spool_backlog, template_report, templated
from tests.reliability.services import database_url, port_of, request_log, tracebacks, wait_for
from tests.support.collector import collector_process

pytestmark = [pytest.mark.slow, pytest.mark.fault]

AGENTS = 200
DAYS = 2
RUNS_PER_DAY = 4
DRAIN_RATE = 2.0  # reports per second per agent (the shipped default)
RETRY_AFTER_S = 2


def failed_once(state: Path) -> bool:
    with Spool(StatePaths(state).spool, 1 << 40) as spool:
        return bool(spool.get("last_delivery_error"))


@pytest.mark.timeout(900)
def test_a_backlog_of_days_from_hundreds_of_agents_drains_without_a_thundering_herd(
    tmp_path: Path, figures: Figures
) -> None:
    """200 agents deliver 2 days of backlog after an outage: peak rate measured, nothing lost."""
    # every agent enrols from 127.0.0.1 here, where a real fleet comes from many addresses: the enrolment
    # throttle (60 a minute per address, tested in tests/collector) is lifted for the set-up
    config = {"retry_after_s": RETRY_AFTER_S, "enroll_attempts_per_minute": 10 * AGENTS}
    with collector_process(tmp_path / "collector", config=config) as collector:
        agents = enrol_fleet(
            collector,
            tmp_path / "fleet",
            AGENTS,
            first_checkin=False,
            drain_rate=DRAIN_RATE,
            request_attempts=2,
            backoff_initial="1s",
            backoff_max="8s",
            delivery_budget="10m",
        )
        assert run_worker(agents[0].config, "checkin")["exit_code"] == 0  # its policy, for the template run
        template = template_report(agents[0])
        per_agent = DAYS * RUNS_PER_DAY
        for agent in agents:
            spool_backlog(agent, per_agent, span=dt.timedelta(days=DAYS), template=templated(template, agent.agent_id))
        total = AGENTS * per_agent
        port = port_of(collector.url)
        collector.stop()  # the outage
        spec = tmp_path / "herd.json"
        out = tmp_path / "herd-out.json"
        spec.write_text(json.dumps({"deadline_s": 600, "configs": [str(a.config) for a in agents]}))
        with (tmp_path / "herd.log").open("w") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.herd_driver", str(spec), str(out)],
                stdout=log, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT,
            )  # fmt: skip
        try:
            wait_for(lambda: all(failed_once(a.state) for a in agents), 120, "every agent to have tried and failed")
            back_at = time.time()
            collector.start(port=port)
            driver.wait(timeout=700)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        assert driver.returncode == 0, (tmp_path / "herd.log").read_text()[-3000:]
        books = collector_books(database_url(collector))
        settlement = settle([agent_books(a.state, a.agent_id) for a in agents], books)
        requests_seen = [(moment, status) for moment, status in request_log(collector) if moment.timestamp() >= back_at]
        log_text = collector.log()
    herd: list[dict[str, Any]] = json.loads(out.read_text())["agents"]
    attempts = [a for record in herd for a in record["attempts"] if a[0] >= back_at]
    stored_at = [moment for moment, status in requests_seen if status == 200]
    turned_away = [moment for moment, status in requests_seen if status == 503]
    drained_at = max(record["drained_at"] for record in herd)
    # pacing, per agent: never faster than drain_rate, never sooner than a Retry-After
    too_fast = too_soon = 0
    examples: list[Any] = []
    for record in herd:
        sends = sorted(record["attempts"])
        # the drain starts sends 1/drain_rate apart; what reaches the wire jitters with 200 threads on one
        # interpreter, so the bound is checked as a rate: at most drain_rate (+1 at the window's edge) a second
        if peak_rate([moment for moment, status, _ in sends if status == 200]) > DRAIN_RATE + 1:
            too_fast += 1
            examples.append(["too fast", sends[:6]])
        for (before, status, retry_after), (after, _, _) in zip(sends, sends[1:], strict=False):
            if status == 503 and retry_after and after - before < float(retry_after) - 0.05:
                too_soon += 1
                examples.append(["too soon", round(before - back_at, 3), round(after - before, 3), sends[:6]])
    figures.set(
        agents=AGENTS,
        reports_spooled=total,
        backlog_days=DAYS,
        requests_after_outage=len(attempts),
        requests_per_report=round(len(attempts) / total, 2),
        peak_requests_per_s=peak_rate([m for m, _ in requests_seen]),
        peak_stored_per_s=peak_rate(stored_at),
        turned_away_503=len(turned_away),
        drain_s=round(drained_at - back_at, 1),
        mean_stored_per_s=round(total / max(drained_at - back_at, 0.001), 1),
        sent_faster_than_drain_rate=too_fast,
        back_sooner_than_retry_after=too_soon,
        offered_ceiling_per_s=AGENTS * DRAIN_RATE,
        pacing_examples=examples[:5],
    )
    figures.merge("", settlement.figures)
    settlement.check()
    assert settlement.figures["reports_stored"] == total
    assert too_fast == 0 and too_soon == 0
    # no retry storm: every report costs at most a few requests, whatever the herd did
    assert len(attempts) <= 3 * total, figures.values
    assert tracebacks(log_text) == []
