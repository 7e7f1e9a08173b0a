"""Counter snapshots: "as at a date" gives the same figures with them as without, when reports arrive late
and across retention runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

import pytest
import sqlalchemy as sa

from collector import jobs
from collector.storage import models, snapshots
from tests.support.agents import SimAgent, make_result
from tests.support.live import LiveCollector

NOW = models.utcnow()
RETENTION = 60
CHECKS = ("c00", "c01", "c02", "c03")


def at(days_ago: int) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat() + "+00:00"


def report_history(agents: list[SimAgent], days: range, seed: int) -> None:
    """Each agent reports on each of `days` (days ago, oldest first), a few statuses flipping each time."""
    rng = random.Random(seed)
    for days_ago in days:
        for agent in agents:
            results = [
                make_result(c, rng.choice(("pass", "pass", "fail", "error")), evaluated_at=at(days_ago)) for c in CHECKS
            ]
            assert agent.report(results).status_code == 200


def as_at(live: LiveCollector, day: dt.date) -> dict[str, Any]:
    summary = live.admin().get(live.url + "/api/v1/summary", params={"as_of": day.isoformat()})
    assert summary.status_code == 200, summary.text
    found = summary.json()
    hosts = live.admin().get(live.url + "/api/v1/hosts", params={"as_of": day.isoformat()})
    assert hosts.status_code == 200, hosts.text
    return {
        "totals": found["totals"],
        "by_group": found["by_group"],
        "by_check": sorted(found["by_check"], key=lambda c: c["check"]),
        "hosts": [(h["agent_id"], h["pass"], h["fail"], h["error"]) for h in hosts.json()["hosts"]],
    }


def summed_changes(live: LiveCollector, day: dt.date) -> dict[tuple[str, str], int]:
    """(check, status) -> the sum of every daily change up to `day`: what "as at" meant before snapshots."""
    changes = models.daily_changes.c
    rows = live.rows(
        sa.select(changes.check_id, changes.status, sa.func.sum(changes.delta))
        .where(changes.day <= day)
        .group_by(changes.check_id, changes.status)
    )
    return {(check, status): int(n) for check, status, n in rows if n}


def by_check_counts(figures: dict[str, Any]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for entry in figures["by_check"]:
        for status in ("pass", "fail", "error", "not_applicable", "waived"):
            if entry[status]:
                counts[(entry["check"], status)] += entry[status]
    return dict(counts)


def kept_days(first: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((NOW.date() - first).days + 1)]


@pytest.mark.parametrize("live_config", [{"retention_days": RETENTION}])
def test_as_at_figures_are_the_same_with_snapshots_late_reports_and_retention(live: LiveCollector) -> None:
    agents = [live.enrolled_agent(group=g) for g in ("north", "north", "south")]
    report_history(agents, range(90, 0, -3), seed=3)
    horizon = NOW.date() - dt.timedelta(days=RETENTION)
    days = kept_days(horizon)
    without = {day: as_at(live, day) for day in days}
    assert live.count(models.snapshot_days) == 0

    outcome = jobs.retention(live.engine, live.config, NOW)

    due = snapshots.days_due(horizon, NOW.date() - dt.timedelta(days=1))
    assert outcome["snapshots_taken"] == len(due) >= 8
    assert sorted(d for (d,) in live.rows(sa.select(models.snapshot_days.c.day))) == due
    assert {day: as_at(live, day) for day in days} == without

    # A host that was offline reports three weeks late, then again: changes on days already snapshotted.
    late = live.enrolled_agent(group="south")
    assert late.report([make_result(c, "fail", evaluated_at=at(21)) for c in CHECKS]).status_code == 200
    assert late.report([make_result(c, "pass", evaluated_at=at(9)) for c in CHECKS[:2]]).status_code == 200
    for day in days:
        figures = as_at(live, day)
        assert by_check_counts(figures) == summed_changes(live, day), day
        if day < NOW.date() - dt.timedelta(days=21):
            assert figures == without[day]
    fortnight = NOW.date() - dt.timedelta(days=15)
    assert as_at(live, fortnight)["totals"]["fail"] == without[fortnight]["totals"]["fail"] + len(CHECKS)

    # A later run (a week on) folds what fell out of the horizon, forgets older snapshots, takes new ones;
    # the days still kept answer as before.
    later = NOW + dt.timedelta(days=8)
    before_second = {day: as_at(live, day) for day in days}
    second = jobs.retention(live.engine, live.config, later)
    assert second["folded_daily_rows"] > 0 and second["snapshots_forgotten"] >= 1
    new_horizon = later.date() - dt.timedelta(days=RETENTION)
    assert min(d for (d,) in live.rows(sa.select(models.snapshot_days.c.day))) >= new_horizon
    for day in days:
        if day >= new_horizon:
            assert as_at(live, day) == before_second[day], day
    # Snapshots are never of a day not over by the database's clock, whatever `now` the job is given.
    assert max(d for (d,) in live.rows(sa.select(models.snapshot_days.c.day))) < NOW.date()
    assert agents[0].report([make_result(c, "fail", evaluated_at=at(0)) for c in CHECKS]).status_code == 200
    assert late.report([make_result(c, "error", evaluated_at=at(5)) for c in CHECKS]).status_code == 200
    for day in days[-10:]:
        assert by_check_counts(as_at(live, day)) == summed_changes(live, day)


def test_snapshot_days_are_the_sundays_from_the_horizon() -> None:
    days = snapshots.days_due(dt.date(2026, 11, 1), dt.date(2026, 11, 30))  # 1 November 2026 is a Sunday
    assert days == [dt.date(2026, 11, d) for d in (1, 8, 15, 22, 29)]
    assert snapshots.days_due(dt.date(2026, 11, 2), dt.date(2026, 11, 7)) == []
