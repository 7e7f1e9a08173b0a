"""Cloud runs under faults: interrupted mid-paging (the `cloud run` process SIGKILLed, a collector killed in
the middle of its scheduled cloud job, gateway timeouts between pages), and Graph throttling "for
minutes": Retry-After values far beyond what the run may wait, with the run's retry budget
(cloud.retry_budget_s) and retries (cloud.max_retries) configured small so the test takes seconds.

The fake tenant (tests/fakes/microsoft/) speaks the real protocol over HTTPS, with paging and throttling.
A run either finishes with exact counts, or records a clear error naming what to change, and never
replaces what was known with half a run.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
import yaml

from collector.storage import models
from collector.storage.engine import make_engine
from tests.collector.cloud.conftest import healthy_scenario
from tests.conftest import BIN
from tests.fakes.microsoft import FakeMicrosoft, Fault, GeneratedUsers, make_certificate
from tests.reliability.accounting import collector_books, settle
from tests.reliability.figures import Figures
from tests.reliability.services import kill_collector, wait_for
from tests.support.collector import RunningCollector, clean_env, init_collector

pytestmark = [pytest.mark.slow, pytest.mark.fault]

MFA_PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
USERS = 20_000  # 200 pages of 100


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeMicrosoft]:
    scenario = healthy_scenario(make_certificate(tmp_path))
    with FakeMicrosoft(trustme.CA(), scenario) as server:
        yield server


def configured(fake: FakeMicrosoft, directory: Path, **cloud: Any) -> RunningCollector:
    collector = init_collector(directory)
    document = yaml.safe_load(collector.config_path.read_text())
    document["cloud"] = fake.config(**cloud)
    collector.config_path.write_text(yaml.safe_dump(document))
    return collector


def cloud_run(collector: RunningCollector) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "rampart-collector"), "--config", str(collector.config_path), "cloud", "run", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def finished(collector: RunningCollector) -> dict[str, Any]:
    process = cloud_run(collector)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def latest(collector: RunningCollector) -> dict[str, tuple[str, dict[str, Any], str]]:
    """(status, observed, reason) of every stored cloud result by check id and subject."""
    engine = make_engine(f"sqlite:///{collector.data_dir / 'collector.db'}", 1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(models.subjects.c.ext_id, models.latest_results.c.check_id, models.latest_results.c.status,
                          models.latest_results.c.observed, models.latest_results.c.reason)
                .join(models.subjects, models.subjects.c.id == models.latest_results.c.subject_id)
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    return {f"{row.check_id}@{row.ext_id}": (row.status, row.observed or {}, row.reason) for row in rows}


def pages_served(fake: FakeMicrosoft, since: int = 0) -> int:
    return sum(1 for r in fake.requests[since:] if r.path.endswith(MFA_PATH) and r.status == 200)


def books_balance(collector: RunningCollector) -> dict[str, Any]:
    return settle([], collector_books(f"sqlite:///{collector.data_dir / 'collector.db'}")).check()


@pytest.mark.timeout(300)
def test_a_cloud_run_killed_mid_paging_replaces_nothing_and_the_next_run_counts_exactly(
    tmp_path: Path, fake: FakeMicrosoft, figures: Figures
) -> None:
    """`cloud run` SIGKILLed mid-paging (page 50 of 200), gateway timeouts between pages: nothing half-stored."""
    collector = configured(fake, tmp_path / "collector")
    first = finished(collector)  # 20 users: every check passes
    known = latest(collector)
    assert first["counts"]["pass"] == len(known) == 16
    fake.scenario.users = GeneratedUsers(USERS)
    # each page a little slow (a correct answer after 40 ms), so that page 50 comes well before page 200
    fake.scenario.faults = [Fault(MFA_PATH, 200, "", delay_s=0.04)]
    mark = len(fake.requests)
    process = cloud_run(collector)
    try:
        wait_for(lambda: pages_served(fake, mark) >= 50 or process.poll() is not None, 120, "page 50", poll=0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=60)
    wait_for(lambda: fake.in_flight == 0, 30, "the killed run's last request to be answered", poll=0.01)
    killed_at = pages_served(fake, mark)
    assert process.returncode == -signal.SIGKILL and killed_at < USERS // 100, "the run ended before it was killed"
    assert latest(collector) == known  # half a run replaced nothing
    # and again, with gateway timeouts between pages: retried, then every page counted once
    fake.scenario.faults = [Fault(MFA_PATH, 504, "GatewayTimeout", times=3)]
    mark = len(fake.requests)
    third = finished(collector)
    coverage = next(r for r in third["results"] if r["check_id"] == "mfa-coverage")
    expected = GeneratedUsers(USERS).expected()
    assert coverage["observed"]["members"] == expected["members"]
    assert coverage["observed"]["mfa_capable"] == expected["mfa_capable"]
    assert coverage["observed"]["pages"] == USERS // 100 == pages_served(fake, mark)
    assert third["requests"]["retries"] >= 3
    figures.set(
        faults_injected=2 + 3,
        pages_served_before_kill=killed_at,
        pages_after=USERS // 100,
        members_counted=coverage["observed"]["members"],
        retries=third["requests"]["retries"],
    )
    figures.merge("", books_balance(collector))
    assert latest(collector)[f"mfa-coverage@{fake.scenario.tenant_id}"][0] == "fail"


@pytest.mark.timeout(300)
def test_graph_throttling_for_minutes_ends_the_run_with_a_clear_error_and_keeps_what_was_known(
    tmp_path: Path, fake: FakeMicrosoft, figures: Figures
) -> None:
    """Graph answers 429 Retry-After: 120 on every page for as long as the test lasts; the run's budget is 3 s."""
    collector = configured(fake, tmp_path / "collector", retry_budget_s=3.0, max_retries=5)
    first = finished(collector)
    tenant = fake.scenario.tenant_id
    assert first["counts"]["pass"] == 16
    fake.scenario.faults = [Fault(MFA_PATH, 429, "TooManyRequests", "Too many requests", retry_after="120")]
    throttled = finished(collector)
    took = throttled["duration_s"]
    by_check = {r["check_id"]: r for r in throttled["results"]}
    coverage = by_check["mfa-coverage"]
    assert coverage["status"] == "error"
    assert "120" in coverage["reason"] and "cloud.retry_budget_s" in coverage["reason"], coverage["reason"]
    # the other checks were judged as usual
    assert sum(1 for r in throttled["results"] if r["status"] == "pass") >= 13
    assert took < 60  # it did not sleep through the Retry-After
    # what was known is kept in the history: the pass before the throttling is still the state as at then
    engine = make_engine(f"sqlite:///{collector.data_dir / 'collector.db'}", 1)
    try:
        with engine.connect() as connection:
            history = connection.execute(
                sa.select(models.result_intervals.c.status, models.result_intervals.c.valid_to)
                .join(models.subjects, models.subjects.c.id == models.result_intervals.c.subject_id)
                .where(models.result_intervals.c.check_id == "mfa-coverage", models.subjects.c.ext_id == tenant)
                .order_by(models.result_intervals.c.valid_from)
            ).all()
            last_run = connection.execute(
                sa.select(models.cloud_runs.c.status, models.cloud_runs.c.reason)
                .where(models.cloud_runs.c.tenant_id == tenant)
                .order_by(models.cloud_runs.c.id.desc())
                .limit(1)
            ).one()
    finally:
        engine.dispose()
    # a check that could not be observed replaces nothing (collector/cloud/store.py): the pass stands, open,
    # and the run is recorded as partial with the reason (the summary shows the pass as stale in time)
    assert [(row.status, row.valid_to) for row in history] == [("pass", None)]
    assert last_run.status == "partial" and "120" in last_run.reason, last_run
    # throttling that fits the budget: waited out, the run finishes with exact counts
    fake.scenario.faults = [Fault(MFA_PATH, 429, "TooManyRequests", retry_after="1", times=2)]
    collector_cfg = yaml.safe_load(collector.config_path.read_text())
    collector_cfg["cloud"]["retry_budget_s"] = 10.0
    collector.config_path.write_text(yaml.safe_dump(collector_cfg))
    recovered = finished(collector)
    assert {r["check_id"]: r["status"] for r in recovered["results"]}["mfa-coverage"] == "pass"
    assert recovered["requests"]["retries"] == 2 and recovered["requests"]["waited_s"] >= 2
    # throttling beyond the retries allowed: a clear error naming cloud.max_retries
    fake.scenario.faults = [Fault(MFA_PATH, 503, "ServiceUnavailable", retry_after="0", times=None)]
    exhausted = finished(collector)
    reason = {r["check_id"]: r for r in exhausted["results"]}["mfa-coverage"]["reason"]
    assert "cloud.max_retries" in reason, reason
    figures.set(
        faults_injected=4,
        retry_after_s=120,
        retry_budget_s=3,
        throttled_run_s=took,
        recovered_retries=recovered["requests"]["retries"],
        recovered_waited_s=recovered["requests"]["waited_s"],
    )
    figures.merge("", books_balance(collector))


@pytest.mark.timeout(300)
def test_a_collector_killed_during_its_scheduled_cloud_job_runs_it_again(
    tmp_path: Path, fake: FakeMicrosoft, figures: Figures
) -> None:
    """The collector SIGKILLed in the middle of its scheduled cloud job: restarted, the job runs again."""
    fake.scenario.users = GeneratedUsers(USERS)
    fake.scenario.faults = [Fault(MFA_PATH, 200, "", delay_s=0.04)]
    collector = configured(fake, tmp_path / "collector", interval="2s")
    try:
        collector.start()
        wait_for(lambda: pages_served(fake) >= 30, 120, "the scheduled cloud job paging")
        kill_collector(collector)
        killed_at = pages_served(fake)
        fake.scenario.faults = []
        collector.start()
        engine = make_engine(f"sqlite:///{collector.data_dir / 'collector.db'}", 1)

        def runs() -> list[Any]:
            with engine.connect() as connection:
                return list(
                    connection.execute(
                        sa.select(models.job_runs.c.status, models.job_runs.c.finished_at, models.job_runs.c.holder)
                        .where(models.job_runs.c.name == "cloud")
                        .order_by(models.job_runs.c.started_at)
                    ).all()
                )

        try:
            wait_for(lambda: any(r.status == "ok" for r in runs()), 120, "a complete scheduled cloud run")
            wait_for(lambda: runs()[0].status != "running", 60, "the killed run to be recorded as ended")
            recorded = runs()
        finally:
            engine.dispose()
    finally:
        collector.stop()
    stored = latest(collector)
    coverage = stored[f"mfa-coverage@{fake.scenario.tenant_id}"]
    assert coverage[1]["members"] == GeneratedUsers(USERS).expected()["members"]
    killed_holder = recorded[0].holder  # the first run, paging when its process was killed
    left_running = [r for r in recorded if r.holder == killed_holder and (r.status == "running" or not r.finished_at)]
    interrupted = [r for r in recorded if r.status == "interrupted"]
    figures.set(
        faults_injected=1,
        pages_served_before_kill=killed_at,
        job_runs=len(recorded),
        runs_left_running=len(left_running),
        runs_interrupted=len(interrupted),
    )
    figures.merge("", books_balance(collector))
    # The killed run is recorded as interrupted (by the restarted collector's first poll: its holder was a
    # process of this host that no longer exists), with an end, never `running` for ever.
    assert left_running == [] and recorded[0].status == "interrupted" and len(interrupted) == 1, recorded
