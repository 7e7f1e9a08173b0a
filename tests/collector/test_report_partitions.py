"""The raw signed reports by month (migration 0011): on PostgreSQL partitioned on when the agent made them,
on SQLite one table. A re-sent report is a duplicate whenever it comes back, a report dated far off is
stored, retention drops whole months of them (PostgreSQL) or deletes them (SQLite), and an upgrade from
0010 and back keeps the reports there are."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from checks import wire
from collector import jobs
from collector.storage import migrate, models, partitions, registry
from collector.storage.assignments import AssignmentCache
from collector.storage.engine import make_engine, run_write, write_tx
from collector.storage.fast_ingest import FastReportStore
from collector.storage.ingest import SignedEvidence, StoreOutcome, parse_report, store_agent_report
from collector.storage.report_codec import decode_report
from collector.storage.waivers import WaiverCache
from tests.support.agents import make_result
from tests.support.live import LiveCollector, live_collector
from tests.support.policies import FLEET_POLICY, store_policy

NOW = models.utcnow().replace(microsecond=0)
RETENTION = 60
Store = Callable[[bytes, SignedEvidence, dt.datetime], StoreOutcome]


def evidence(timestamp: int) -> SignedEvidence:
    return SignedEvidence("POST", "/api/v1/reports", timestamp, f"{timestamp:064d}", "s" * 86)


def where_rows_are(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT tableoid::regclass::text, count(*) FROM reports GROUP BY 1").all()
    return {name.split(".")[-1]: int(n) for name, n in rows}


def month_name(month: dt.date) -> str:
    return f"reports_{month.year:04d}_{month.month:02d}"


class Fleet:
    """One enrolled agent and the fleet policy, in a database at the head revision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.key = wire.generate_key()
        self.agent_id = wire.agent_id_for(self.key)
        with write_tx(engine) as connection:
            token, _ = registry.create_token(
                connection, group="default", max_uses=1, valid_for=dt.timedelta(days=1), created_by="t", now=NOW
            )
            registry.enroll(
                connection, agent_id=self.agent_id, public_key=wire.public_key_text(self.key), token=token,
                host={"hostname": "h1"}, now=NOW,
            )  # fmt: skip
            store_policy(connection, FLEET_POLICY, now=NOW)

    def body(self, report_id: str, created_at: str | None, status: str = "fail") -> bytes:
        report = wire.make_report(
            agent_id=self.agent_id, results=[make_result("c00", status)], report_id=report_id, created_at=created_at
        )
        if created_at is None:
            del report["created_at"]  # a sender that does not say when it made the report
        return json.dumps(report).encode()

    def stored(self, report_id: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(models.reports.c.signed_timestamp, models.reports.c.created_on).where(
                    models.reports.c.report_id == report_id
                )
            ).all()
        return [tuple(row) for row in rows]


def sqlalchemy_store(fleet: Fleet) -> Store:
    """What the collector runs on SQLite (and wherever its fast PostgreSQL store is not in use)."""
    waiver_cache, assignment_cache = WaiverCache(), AssignmentCache("default", dt.timedelta(hours=2))

    def store(body: bytes, signed: SignedEvidence, now: dt.datetime) -> StoreOutcome:
        parsed = parse_report(json.loads(body), fleet.agent_id)
        return run_write(
            fleet.engine,
            lambda c: store_agent_report(
                c, parsed, body, signed, now=now, waivers=waiver_cache.current, assignments=assignment_cache.current
            ),
        )

    return store


@pytest.fixture(params=["sqlalchemy", "fast"])
def fleet_and_store(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Fleet, Store]]:
    """Each store path of each database: SQLAlchemy on both, FastReportStore on PostgreSQL."""
    if request.param == "fast" and not database_url.startswith("postgresql"):
        pytest.skip("the fast store is PostgreSQL's")
    engine = make_engine(database_url, 2)
    migrate.upgrade(engine)
    fleet = Fleet(engine)
    if request.param == "sqlalchemy":
        yield fleet, sqlalchemy_store(fleet)
    else:
        fast = FastReportStore(database_url, 2, WaiverCache(), AssignmentCache("default", dt.timedelta(hours=2)))

        def store(body: bytes, signed: SignedEvidence, now: dt.datetime) -> StoreOutcome:
            parsed = decode_report(body, fleet.agent_id)
            assert parsed is not None
            return fast.store(parsed, body, signed, now)

        yield fleet, store
        fast.dispose()
    engine.dispose()


@pytest.mark.parametrize("created_at", ["2026-10-30T23:59:59Z", None], ids=["created_at", "no_created_at"])
def test_a_report_resent_in_a_later_month_is_a_duplicate_stored_once(
    fleet_and_store: tuple[Fleet, Store], created_at: str | None
) -> None:
    fleet, store = fleet_and_store
    first_seen = dt.datetime(2026, 10, 31, 8, 0)
    body = fleet.body("spooled-report-0001", created_at)
    assert not store(body, evidence(1_000), first_seen).duplicate
    # The agent's spool sends it again weeks later (the answer was lost), signed anew.
    again = store(body, evidence(2_000), first_seen + dt.timedelta(days=40))
    assert again.duplicate and again.stored == 0
    expected_on = dt.date(2026, 10, 30) if created_at else first_seen.date()
    assert fleet.stored("spooled-report-0001") == [(1_000, expected_on)]
    # And a new report of the same host is not one.
    assert not store(fleet.body("next-report-0002", created_at, "pass"), evidence(3_000), first_seen).duplicate


def test_reports_made_far_in_the_future_or_the_past_are_stored(fleet_and_store: tuple[Fleet, Store]) -> None:
    fleet, store = fleet_and_store
    for report_id, created_at in (("from-1970-000", "1970-01-01T00:00:00Z"), ("from-2090-000", "2090-06-01T12:00:00Z")):
        assert not store(fleet.body(report_id, created_at), evidence(1), NOW).duplicate
        assert store(fleet.body(report_id, created_at), evidence(2), NOW).duplicate
    assert [len(fleet.stored(r)) for r in ("from-1970-000", "from-2090-000")] == [1, 1]
    if fleet.engine.dialect.name == "postgresql":
        assert where_rows_are(fleet.engine) == {"reports_before": 1, "reports_after": 1}


def test_retention_drops_the_old_months_of_reports(tmp_path: Path, database_url: str) -> None:
    with live_collector(tmp_path, database_url, retention_days=RETENTION) as live:
        # In a function of its own: the answers it holds (and their connections) are gone before the server
        # stops, as with the `live` fixture; kept in this frame, they outlast its graceful shutdown.
        age_reports_and_retain(live)


def age_reports_and_retain(live: LiveCollector) -> None:
    agent = live.enrolled_agent()
    ages = (400, 200, 100, 61, 59, 2)  # days since the agent made each report (spooled, or just made)
    for days in ages:
        made = (NOW - dt.timedelta(days=days)).isoformat() + "Z"
        reply = agent.report([make_result("c00", "pass")], report_id=f"aged-{days:04d}", created_at=made)
        assert reply.status_code == 200, reply.text
    postgres = live.engine.dialect.name == "postgresql"
    horizon = (NOW - dt.timedelta(days=RETENTION)).date()
    gone = [partitions.month_of((NOW - dt.timedelta(days=d)).date()) for d in (200, 100)]
    if postgres:
        with live.engine.connect() as connection:
            assert {month_name(m) for m in gone} <= set(partitions.partition_names(connection, "reports"))

    outcome = jobs.retention(live.engine, live.config, NOW)

    kept = {row[0] for row in live.rows(sa.select(models.reports.c.report_id))}
    assert kept == {"aged-0059", "aged-0002"}
    cutoff = NOW - dt.timedelta(days=RETENTION)
    old = [NOW - dt.timedelta(days=d) for d in ages if NOW - dt.timedelta(days=d) < cutoff]
    in_horizons_month = [m for m in old if partitions.add_months(partitions.month_of(m.date()), 1) > horizon]
    # PostgreSQL deletes only those of the horizon's month: the others went with their months.
    assert outcome["deleted_reports"] == len(in_horizons_month if postgres else old)
    if not postgres:
        return
    assert outcome["partitions_dropped"] > 0
    with live.engine.connect() as connection:
        names = set(partitions.partition_names(connection, "reports"))
        assert partitions.months(connection, "reports")[0] == partitions.month_of(horizon)
        for month in gone:  # gone from the catalogue, not only detached
            assert month_name(month) not in names
            found = connection.exec_driver_sql(
                "SELECT to_regclass(current_schema() || '_partitions.' || %(n)s)", {"n": month_name(month)}
            ).scalar()
            assert found is None
    assert "reports_before" in names and where_rows_are(live.engine).get("reports_before", 0) == 0
    # A report still lands, and a re-send of a kept one is still a duplicate.
    made = NOW.isoformat() + "Z"
    assert agent.report([make_result("c00", "fail")], report_id="after-retention", created_at=made).json()["stored"]
    resent = agent.report([make_result("c00", "pass")], report_id="aged-0002",
                          created_at=(NOW - dt.timedelta(days=2)).isoformat() + "Z")  # fmt: skip
    assert resent.status_code == 200 and resent.json()["duplicate"] is True


def downgrade(engine: Engine, revision: str) -> None:
    config = migrate.alembic_config()
    with write_tx(engine) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


OLD_ROWS = {  # created_at as a 0010 collector stored it -> the created_on 0011 gives it
    "z-000001": ("2026-11-26T10:00:00Z", dt.date(2026, 11, 26)),
    "offset-01": ("2026-11-27T01:30:00.75+02:00", dt.date(2026, 11, 26)),  # the day in UTC
    "naive-001": ("2026-11-26T23:59:59.5", dt.date(2026, 11, 26)),
    "short-001": ("2026-11-26T10:00", dt.date(2026, 11, 26)),  # read in Python
    "empty-001": ("", dt.date(2026, 11, 27)),  # the day it was received
    "epoch-001": ("1970-01-01T00:00:00Z", dt.date(1970, 1, 1)),
}


def test_upgrade_from_0010_and_back_keeps_the_reports(database_url: str) -> None:
    engine = make_engine(database_url, 1)
    try:
        migrate.upgrade(engine, "0010")
        fleet = Fleet(engine)
        with write_tx(engine) as connection:
            subject_id = connection.execute(sa.text("SELECT subject_id FROM agents")).scalar_one()
            for report_id, (created_at, _on) in OLD_ROWS.items():
                connection.execute(
                    sa.text(
                        "INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, result_count, "
                        "dropped, signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib) "
                        "VALUES (:r, :a, :s, :t, :c, 1, 0, 'POST', '/', 7, '', '', :b)"
                    ),
                    {"r": report_id, "a": fleet.agent_id, "s": subject_id, "t": dt.datetime(2026, 11, 27, 6),
                     "c": created_at, "b": zlib.compress(report_id.encode())},
                )  # fmt: skip
        migrate.upgrade(engine)
        with engine.connect() as connection:
            found = dict(connection.execute(sa.select(models.reports.c.report_id, models.reports.c.created_on)).all())
        assert found == {report_id: on for report_id, (_c, on) in OLD_ROWS.items()}
        if engine.dialect.name == "postgresql":
            placed = where_rows_are(engine)
            assert placed["reports_before"] == 1 and sum(placed.values()) == len(OLD_ROWS)
        # A report stored before the upgrade, sent again after it: the same created_on, still a duplicate.
        resent = fleet.body("z-000001", "2026-11-26T10:00:00Z")
        assert sqlalchemy_store(fleet)(resent, evidence(9), NOW).duplicate
        assert sqlalchemy_store(fleet)(fleet.body("new-after-0011", None), evidence(9), NOW).stored == 1

        downgrade(engine, "0010")
        with engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("reports")}
            kept = connection.exec_driver_sql("SELECT report_id, created_at, body_zlib FROM reports").all()
        assert "created_on" not in columns
        assert {r: (c, zlib.decompress(b).decode()) for r, c, b in kept if r in OLD_ROWS} == {
            r: (c, r) for r, (c, _on) in OLD_ROWS.items()
        }
        assert len(kept) == len(OLD_ROWS) + 1
        with pytest.raises(sa.exc.IntegrityError), write_tx(engine) as connection:  # unique by report_id again
            connection.exec_driver_sql(
                "INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, result_count, dropped, "
                "signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib) "
                "SELECT report_id, agent_id, subject_id, received_at, 'x', 1, 0, 'POST', '/', 1, '', '', body_zlib "
                "FROM reports WHERE report_id = 'z-000001'"
            )
        assert migrate.upgrade(engine) == ("0010", migrate.SCHEMA_HEAD)  # and up again
    finally:
        engine.dispose()
