"""Several collector processes on one PostgreSQL: nothing lost or counted twice, jobs run once."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.storage import models
from collector.storage.engine import make_engine
from tests.support.agents import SimAgent, make_results
from tests.support.collector import RunningCollector, init_collector
from tests.support.policies import store_fleet_policy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def two_collectors(tmp_path: Path, pg_url: str) -> Iterator[tuple[RunningCollector, list[str]]]:
    collector = init_collector(
        tmp_path, database_url=pg_url, config={"retention_interval_s": 1, "job_poll_s": 1, "db_pool_size": 4}
    )
    engine = make_engine(pg_url, pool_size=1)
    store_fleet_policy(engine)  # what the simulated agents' results are judged against
    engine.dispose()
    try:
        urls = [collector.start(), collector.start()]
        yield collector, urls
    finally:
        collector.stop()


def test_two_processes_ingesting_at_once_give_exact_totals(
    two_collectors: tuple[RunningCollector, list[str]], pg_url: str
) -> None:
    collector, urls = two_collectors
    token = collector.cli("enroll-token", "create", "--uses", "20", "--format", "json")
    secret = json.loads(token.stdout)["token"]
    agents = [SimAgent(urls[i % 2], collector.ca_file) for i in range(20)]
    for agent in agents:
        assert agent.enroll(secret).status_code == 201
    reports_per_agent = 8
    errors: list[str] = []

    def send(sender: SimAgent, body: bytes, replies: list[int]) -> None:
        replies.append(sender.signed("POST", "/api/v1/reports", body).status_code)

    def deliver(index: int, agent: SimAgent) -> None:
        # Each agent alternates collectors, flips statuses every report, and re-sends every report to the
        # other collector at once: the duplicates race the originals.
        other = SimAgent(urls[(index + 1) % 2], collector.ca_file, key=agent.key)
        for report in range(reports_per_agent):
            results = make_results(40, fail_every=2 + report % 3)
            report_id = str(uuid.uuid4())
            body = agent.report_body(results, report_id=report_id)
            replies: list[int] = []
            first = threading.Thread(target=send, args=(agent, body, replies))
            first.start()
            replies.append(other.signed("POST", "/api/v1/reports", body).status_code)
            first.join()
            if replies != [200, 200]:
                errors.append(f"agent {index} report {report}: {replies}")
        other.session.close()

    threads = [threading.Thread(target=deliver, args=(i, a)) for i, a in enumerate(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    for agent in agents:
        agent.session.close()

    engine = make_engine(pg_url, pool_size=1)
    try:
        with engine.connect() as connection:

            def scalar(statement: sa.Select[Any]) -> int:
                value: Any = connection.execute(statement).scalar_one()
                return int(value)

            assert scalar(sa.select(sa.func.count()).select_from(models.reports)) == 20 * reports_per_agent
            assert scalar(sa.select(sa.func.count()).select_from(models.latest_results)) == 20 * 40
            assert scalar(sa.select(sa.func.sum(models.status_counts.c.count))) == 20 * 40
            assert scalar(sa.select(sa.func.sum(models.daily_changes.c.delta))) == 20 * 40
            open_intervals = sa.select(sa.func.count()).where(models.result_intervals.c.valid_to.is_(None))
            assert scalar(open_intervals) == 20 * 40
            latest: dict[str, int] = dict(
                connection.execute(
                    sa.select(models.latest_results.c.status, sa.func.count()).group_by(models.latest_results.c.status)
                ).all()
            )
            counted = dict(
                connection.execute(
                    sa.select(models.status_counts.c.status, sa.func.sum(models.status_counts.c.count)).group_by(
                        models.status_counts.c.status
                    )
                ).all()
            )
            assert {k: int(v) for k, v in counted.items() if v} == latest
            # The last report of every agent (fail_every = 2 + 7 % 3 = 3) is the state kept.
            assert latest["fail"] == 20 * len([i for i in range(40) if i % 3 == 0])
    finally:
        engine.dispose()


def test_scheduled_jobs_run_once_across_two_processes(
    two_collectors: tuple[RunningCollector, list[str]], pg_url: str
) -> None:
    time.sleep(6)
    engine = make_engine(pg_url, pool_size=1)
    try:
        with engine.connect() as connection:
            runs = connection.execute(
                sa.select(models.job_runs.c.started_at, models.job_runs.c.holder, models.job_runs.c.status)
                .where(models.job_runs.c.name == "retention")
                .order_by(models.job_runs.c.started_at)
            ).all()
    finally:
        engine.dispose()
    assert len(runs) >= 3
    assert all(run.status in ("ok", "running") for run in runs)
    starts = [run.started_at for run in runs]
    # One run per one-second slot, however many processes poll.
    assert all(later - earlier >= dt.timedelta(seconds=1) for earlier, later in zip(starts, starts[1:], strict=False))
    assert len({run.holder for run in runs}) <= 2
