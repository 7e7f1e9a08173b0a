"""Retention: history and raw reports past the horizon go; what remains answers "as at" exactly as before."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from collector import jobs
from collector.storage import models
from tests.support.agents import make_result
from tests.support.live import LiveCollector

NOW = models.utcnow()


def at(days_ago: int) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat() + "+00:00"


def trend(live: LiveCollector, start: dt.date) -> list[dict[str, Any]]:
    response = live.admin().get(
        live.url + "/api/v1/trends", params={"period": "day", "from": start.isoformat(), "to": NOW.date().isoformat()}
    )
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()["points"]
    return points


def test_retention_deletes_old_history_and_keeps_answers_within_the_horizon(live: LiveCollector) -> None:
    agents = [live.enrolled_agent() for _ in range(3)]
    # Status flips 600, 450, 390, 20 and 2 days ago, on each host.
    for days, status in ((600, "fail"), (450, "pass"), (390, "fail"), (20, "pass"), (2, "fail")):
        for agent in agents:
            assert agent.report([make_result("c00", status, evaluated_at=at(days))]).status_code == 200
    with live.engine.begin() as connection:  # the first three reports were made (and arrived) long ago, too
        old = sa.select(models.reports.c.id).order_by(models.reports.c.id).limit(9).scalar_subquery()
        long_ago = NOW - dt.timedelta(days=500)
        connection.execute(
            models.reports.update()
            .where(models.reports.c.id.in_(old))
            .values(received_at=long_ago, created_at=long_ago.isoformat() + "Z", created_on=long_ago.date())
        )
    horizon = NOW.date() - dt.timedelta(days=live.config.retention_days)
    before = trend(live, horizon)
    intervals_before = live.count(models.result_intervals)

    outcome = jobs.retention(live.engine, live.config, NOW)

    assert outcome["deleted_intervals"] == 3  # the intervals that ended (450 days ago) before the horizon
    # Deleted one by one on PostgreSQL too: they are in the `before` partition, which goes only with a month
    # wholly past the horizon, and the months made by the migration reach 13 back, within 400 days.
    assert outcome["deleted_reports"] == 9
    assert live.count(models.result_intervals) == intervals_before - 3
    assert trend(live, horizon) == before  # the same answer for every day still kept
    assert (before[0]["pass"], before[0]["fail"]) == (3, 0)  # passing from 450 to 390 days ago
    rows = live.rows(sa.select(models.daily_changes.c.day).where(models.daily_changes.c.day < horizon))
    assert {day for (day,) in rows} == {horizon - dt.timedelta(days=1)}
    assert set(live.rows(sa.select(models.daily_changes.c.shard).where(models.daily_changes.c.day < NOW.date()))) == {
        (0,)
    }
    host = live.admin().get(
        f"{live.url}/api/v1/hosts/{agents[0].agent_id}",
        params={"as_of": (NOW.date() - dt.timedelta(days=10)).isoformat()},
    )
    assert [(r["check"], r["status"]) for r in host.json()["results"]] == [("c00", "pass")]
    # A second run finds nothing more to delete, and changes no answer.
    again = jobs.retention(live.engine, live.config, NOW)
    assert again["deleted_intervals"] == 0 and again["deleted_reports"] == 0
    assert trend(live, horizon) == before


def test_the_job_runs_once_per_slot_and_is_recorded(live: LiveCollector) -> None:
    first = jobs.run_due(live.engine, live.config, "process-a", NOW, jobs=jobs.build_jobs(None))
    second = jobs.run_due(live.engine, live.config, "process-b", NOW, jobs=jobs.build_jobs(None))
    later = jobs.run_due(
        live.engine,
        live.config,
        "process-b",
        NOW + dt.timedelta(seconds=live.config.retention_interval_s),
        jobs=jobs.build_jobs(None),
    )
    assert [r["job"] for r in first] == ["retention"] and second == [] and [r["job"] for r in later] == ["retention"]
    runs = live.rows(sa.select(models.job_runs.c.holder, models.job_runs.c.status).order_by(models.job_runs.c.id))
    assert [tuple(r) for r in runs] == [("process-a", "ok"), ("process-b", "ok")]
