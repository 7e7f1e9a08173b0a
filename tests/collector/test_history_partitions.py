"""PostgreSQL: the history tables partitioned by month (migration 0010); retention drops whole months and the
figures as at the dates kept do not change; an upgrade from 0008 moves the rows it finds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector import jobs
from collector.storage import migrate, models, partitions
from collector.storage.engine import make_engine, write_tx
from tests.support.agents import make_result
from tests.support.live import LiveCollector, live_collector

NOW = models.utcnow()
RETENTION = 60


def at(days_ago: int) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat() + "+00:00"


def month_name(table: str, month: dt.date) -> str:
    return f"{table}_{month.year:04d}_{month.month:02d}"


def where_rows_are(engine: sa.Engine, table: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1").all()
    return {name.split(".")[-1]: int(n) for name, n in rows}


def trend(live: LiveCollector, start: dt.date) -> list[dict[str, Any]]:
    response = live.admin().get(
        live.url + "/api/v1/trends", params={"period": "day", "from": start.isoformat(), "to": NOW.date().isoformat()}
    )
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()["points"]
    return points


def test_retention_drops_whole_months_and_keeps_the_figures(tmp_path: Path, pg_url: str) -> None:
    with live_collector(tmp_path, pg_url, retention_days=RETENTION) as live:
        this_month = partitions.month_of(NOW.date())
        with live.engine.connect() as connection:
            names = partitions.partition_names(connection, "result_intervals")
            assert {"result_intervals_before", "result_intervals_after", "result_intervals_open"} <= set(names)
            assert partitions.months(connection, "daily_changes") == [
                partitions.add_months(this_month, n) for n in range(-13, partitions.AHEAD_MONTHS + 1)
            ]
        agents = [live.enrolled_agent() for _ in range(3)]
        for days, status in ((200, "fail"), (150, "pass"), (100, "fail"), (30, "pass"), (2, "fail")):
            for agent in agents:
                assert agent.report([make_result("c00", status, evaluated_at=at(days))]).status_code == 200
        placed = where_rows_are(live.engine, "result_intervals")
        assert placed["result_intervals_open"] == 3  # the open intervals, one per host
        closed_month = partitions.month_of((NOW - dt.timedelta(days=150)).date())
        assert placed[month_name("result_intervals", closed_month)] == 3  # closed 150 days ago
        horizon = NOW.date() - dt.timedelta(days=RETENTION)
        before = trend(live, horizon)
        host_then = (
            live.admin()
            .get(
                f"{live.url}/api/v1/hosts/{agents[0].agent_id}",
                params={"as_of": (horizon + dt.timedelta(days=1)).isoformat()},
            )
            .json()["results"]
        )

        outcome = jobs.retention(live.engine, live.config, NOW)

        assert outcome["partitions_dropped"] > 0
        with live.engine.connect() as connection:
            kept = partitions.months(connection, "result_intervals")
            assert kept[0] == partitions.month_of(horizon)  # every month wholly before the horizon went
            assert "result_intervals_before" in partitions.partition_names(connection, "result_intervals")
        assert (
            live.scalar(
                sa.select(sa.func.count())
                .select_from(models.result_intervals)
                .where(models.result_intervals.c.valid_to < NOW - dt.timedelta(days=RETENTION))
            )
            == 0
        )
        assert live.count(models.result_intervals) == 9  # closed 30 and 2 days ago, and open
        assert trend(live, horizon) == before
        again = (
            live.admin()
            .get(
                f"{live.url}/api/v1/hosts/{agents[0].agent_id}",
                params={"as_of": (horizon + dt.timedelta(days=1)).isoformat()},
            )
            .json()["results"]
        )
        assert again == host_then
        # Reports still land, in the months kept and in the open partition.
        assert agents[0].report([make_result("c00", "pass", evaluated_at=at(0))]).status_code == 200
        assert where_rows_are(live.engine, "result_intervals")["result_intervals_open"] == 3


def test_months_are_made_ahead_and_the_after_partition_hands_its_rows_over(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    try:
        migrate.upgrade(engine)
        far = partitions.add_months(partitions.month_of(NOW.date()), 5)
        with write_tx(engine) as connection:
            connection.execute(
                models.daily_changes.insert().values(
                    day=far, shard=0, group_name="g", policy_id="p", check_id="c", status="pass", delta=1
                )
            )
        assert where_rows_are(engine, "daily_changes") == {"daily_changes_after": 1}
        with write_tx(engine) as connection:
            created = partitions.ensure_ahead(connection, "daily_changes", far)
        assert created == 5
        assert where_rows_are(engine, "daily_changes") == {month_name("daily_changes", far): 1}
    finally:
        engine.dispose()


def test_upgrade_from_0008_moves_the_rows_into_partitions(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    this_month = partitions.month_of(NOW.date())
    long_ago = NOW - dt.timedelta(days=3 * 365)
    last_month = dt.datetime.combine(partitions.add_months(this_month, -1), dt.time(9))
    intervals = [
        {"id": 1, "valid_from": long_ago - dt.timedelta(days=3), "valid_to": long_ago},
        {"id": 2, "valid_from": long_ago, "valid_to": last_month},
        {"id": 3, "valid_from": last_month, "valid_to": None},
    ]
    try:
        migrate.upgrade(engine, "0008")
        with write_tx(engine) as connection:
            connection.execute(
                models.result_intervals.insert(),
                [{**row, "subject_id": 1, "policy_id": "p", "check_id": "c", "status": "pass", "policy_hash": "h",
                  "report_id": None} for row in intervals],
            )  # fmt: skip
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('result_intervals', 'id'), 3)")
            connection.execute(
                models.daily_changes.insert(),
                [{"day": day, "shard": 0, "group_name": "g", "policy_id": "p", "check_id": "c", "status": "pass",
                  "delta": 1} for day in (long_ago.date(), last_month.date())],
            )  # fmt: skip
            connection.execute(
                models.observations.insert().values(
                    subject_id=1, policy_id="p", check_id="c", day=last_month.date(), status="pass", observed={"n": 1},
                    expectation=None, reason="", evaluated_at=last_month,
                )
            )  # fmt: skip
        migrate.upgrade(engine)
        with engine.connect() as connection:
            kept = connection.execute(
                sa.select(models.result_intervals.c.id, models.result_intervals.c.valid_to).order_by("id")
            ).all()
        assert kept == [(r["id"], r["valid_to"]) for r in intervals]
        assert where_rows_are(engine, "result_intervals") == {
            "result_intervals_before": 1,
            month_name("result_intervals", partitions.add_months(this_month, -1)): 1,
            "result_intervals_open": 1,
        }
        assert where_rows_are(engine, "daily_changes") == {
            "daily_changes_before": 1,
            month_name("daily_changes", partitions.add_months(this_month, -1)): 1,
        }
        assert where_rows_are(engine, "observations") == {
            month_name("observations", partitions.add_months(this_month, -1)): 1
        }
        with write_tx(engine) as connection:  # the id sequence carries on; the primary keys still hold
            new_id = connection.execute(
                models.result_intervals.insert()
                .values(subject_id=1, policy_id="p", check_id="c2", status="fail", policy_hash="h", valid_from=NOW)
                .returning(models.result_intervals.c.id)
            ).scalar_one()
        assert new_id == 4
        with pytest.raises(sa.exc.IntegrityError), write_tx(engine) as connection:
            connection.execute(
                models.daily_changes.insert().values(
                    day=last_month.date(), shard=0, group_name="g", policy_id="p", check_id="c", status="pass", delta=1
                )
            )
    finally:
        engine.dispose()
