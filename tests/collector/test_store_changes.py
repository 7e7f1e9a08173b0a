"""Storing what changed: an unchanged result rewrites nothing but its host's mark, a changed one does.

Each test runs on SQLite (one SQLAlchemy transaction) and on PostgreSQL (the collector's own psycopg path),
with reports as agents send them: one evaluation time per run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from checks import wire
from collector.storage import migrate, models, registry
from collector.storage.assignments import AssignmentCache
from collector.storage.digest import result_digest
from collector.storage.engine import make_engine, run_write, write_tx
from collector.storage.fast_ingest import FastReportStore, available
from collector.storage.ingest import SignedEvidence, StoreOutcome, store_agent_report
from collector.storage.queries import host as host_view
from collector.storage.report_codec import decode_report
from collector.storage.waivers import WaiverCache
from tests.support.agents import make_result
from tests.support.policies import FLEET_POLICY, store_policy

START = dt.datetime(2026, 11, 20, 8, 0, 0)
EVIDENCE = SignedEvidence("POST", "/api/v1/reports", 1_790_000_000, "0" * 64, "s" * 86)
GRACE = dt.timedelta(hours=2)


class Collector:
    """Stores reports as the collector does on this database."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, 2)
        migrate.upgrade(self.engine)
        self.waivers, self.assignments = WaiverCache(), AssignmentCache("default", GRACE)
        self.fast = FastReportStore(url, 1, self.waivers, self.assignments) if available(self.engine) else None
        key = wire.generate_key()
        self.agent_id = wire.agent_id_for(key)
        with write_tx(self.engine) as connection:
            token, _ = registry.create_token(
                connection, group="default", max_uses=1, valid_for=dt.timedelta(days=1), created_by="t", now=START
            )
            registry.enroll(
                connection, agent_id=self.agent_id, public_key=wire.public_key_text(key), token=token,
                host={"hostname": "h1"}, now=START,
            )  # fmt: skip
        run_write(self.engine, lambda c: store_policy(c, FLEET_POLICY, now=START))

    def close(self) -> None:
        if self.fast is not None:
            self.fast.dispose()
        self.engine.dispose()

    def send(self, body: bytes, now: dt.datetime) -> StoreOutcome:
        parsed = decode_report(body, self.agent_id)
        assert parsed is not None
        if self.fast is not None:
            return self.fast.store(parsed, body, EVIDENCE, now)
        return run_write(
            self.engine,
            lambda c: store_agent_report(
                c, parsed, body, EVIDENCE, now=now, waivers=self.waivers.current, assignments=self.assignments.current
            ),
        )

    def report(self, run: dt.datetime, results: list[dict[str, Any]]) -> bytes:
        stamped = [dict(r, evaluated_at=run.isoformat() + "Z") for r in results]
        return json.dumps(wire.make_report(agent_id=self.agent_id, results=stamped)).encode()

    def rows(self, table: str, *columns: str) -> list[tuple[Any, ...]]:
        chosen = [models.metadata.tables[table].c[name] for name in columns]
        with self.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.select(*chosen).order_by(*chosen[:2]))]

    def host(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return host_view.host(
                connection, self.agent_id, now=START + dt.timedelta(days=1), stale_after=dt.timedelta(days=2)
            )

    def evaluated(self) -> dict[str, str]:
        return {r["check"]: r["evaluated_at"] for r in self.host()["results"]}


@pytest.fixture
def collector(database_url: str) -> Iterator[Collector]:
    made = Collector(database_url)
    try:
        yield made
    finally:
        made.close()


LATEST = ("check_id", "status", "observed", "evaluated_at", "report_id")
HISTORY = ("check_id", "valid_from", "valid_to", "status")
COUNTS = ("check_id", "status", "count")
DAILY = ("check_id", "day", "status", "delta")


def state_of(collector: Collector) -> dict[str, Any]:
    return {
        "latest": collector.rows("latest_results", *LATEST),
        "history": collector.rows("result_intervals", *HISTORY),
        "counts": collector.rows("status_counts", *COUNTS),
        "daily": collector.rows("daily_changes", *DAILY),
    }


def pg_row_versions(collector: Collector) -> list[Any] | None:
    """PostgreSQL's row versions of the latest rows (a rewritten row gets a new one); None on SQLite."""
    if collector.fast is None:
        return None
    with collector.engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT xmin::text FROM latest_results ORDER BY check_id")).scalars())


def test_an_unchanged_result_rewrites_nothing_but_the_hosts_mark_and_evaluated_at_advances(
    collector: Collector,
) -> None:
    results = [make_result("c00", "fail", observed={"v": 1}), make_result("c01", "pass", observed={"v": 2})]
    first = collector.send(collector.report(START, results), START)
    assert (first.stored, first.rewritten, first.changed) == (2, 2, 2)
    before, versions = state_of(collector), pg_row_versions(collector)
    later = START + dt.timedelta(hours=1)
    body = collector.report(later, results)
    second = collector.send(body, later + dt.timedelta(seconds=5))
    assert (second.stored, second.rewritten, second.changed, second.duplicate) == (2, 0, 0, False)
    assert state_of(collector) == before  # latest rows, history, counters: untouched
    assert pg_row_versions(collector) == versions
    report_id = json.loads(body)["report_id"]
    assert collector.rows("subjects", "last_report_id", "last_evaluated_at") == [(report_id, later)]
    # What every output shows: evaluated at the host's last report.
    assert collector.evaluated() == {"c00": later.isoformat() + "Z", "c01": later.isoformat() + "Z"}


def test_a_changed_fact_under_the_same_status_rewrites_the_row_and_not_the_history(collector: Collector) -> None:
    collector.send(collector.report(START, [make_result("c00", "fail", observed={"v": 1})]), START)
    before = state_of(collector)
    later = START + dt.timedelta(hours=1)
    changed = collector.send(collector.report(later, [make_result("c00", "fail", observed={"v": 9})]), later)
    assert (changed.stored, changed.rewritten, changed.changed) == (1, 1, 0)
    after = state_of(collector)
    assert after["history"] == before["history"] and after["counts"] == before["counts"]
    assert after["daily"] == before["daily"]
    [(check, status, observed, evaluated_at, _report)] = after["latest"]
    assert (check, status, observed, evaluated_at) == ("c00", "fail", {"v": 9}, later)
    assert collector.host()["results"][0]["observed"] == {"v": 9}
    # A changed reason (same status, same facts) is a change too.
    reason = make_result("c00", "fail", observed={"v": 9})
    reason["reason"] = "another reason"
    again = collector.send(collector.report(later + dt.timedelta(hours=1), [reason]), later + dt.timedelta(hours=1))
    assert again.rewritten == 1 and again.changed == 0


def test_a_status_change_writes_row_history_and_counters(collector: Collector) -> None:
    collector.send(collector.report(START, [make_result("c00", "fail", observed={"v": 1})]), START)
    later = START + dt.timedelta(hours=1)
    flipped = collector.send(collector.report(later, [make_result("c00", "pass", observed={"v": 1})]), later)
    assert (flipped.rewritten, flipped.changed) == (1, 1)
    assert collector.rows("result_intervals", *HISTORY) == [("c00", START, later, "fail"), ("c00", later, None, "pass")]
    assert [r for r in collector.rows("status_counts", *COUNTS) if r[2]] == [("c00", "pass", 1)]


def test_resent_reports_change_nothing_and_keep_the_evaluation_time(collector: Collector) -> None:
    results = [make_result("c00", "fail", observed={"v": 1})]
    first_body = collector.report(START, results)
    collector.send(first_body, START)
    later = START + dt.timedelta(hours=1)
    second_body = collector.report(later, results)
    collector.send(second_body, later)
    before = state_of(collector), collector.rows("subjects", "last_report_id", "last_evaluated_at")
    for body in (first_body, second_body, first_body):
        again = collector.send(body, later + dt.timedelta(hours=2))
        assert again.duplicate and again.rewritten == 0
    assert (state_of(collector), collector.rows("subjects", "last_report_id", "last_evaluated_at")) == before
    assert collector.evaluated() == {"c00": later.isoformat() + "Z"}
    with collector.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM reports")).scalar() == 2


def test_a_check_left_out_of_a_report_keeps_the_time_it_was_last_evaluated(collector: Collector) -> None:
    both = [make_result("c00", "fail", observed={"v": 1}), make_result("c01", "pass", observed={"v": 2})]
    collector.send(collector.report(START, both), START)
    confirmed_at = START + dt.timedelta(hours=1)
    collector.send(collector.report(confirmed_at, both), confirmed_at)  # both unchanged: confirmed then
    last = START + dt.timedelta(hours=2)
    only_one = collector.send(collector.report(last, both[1:]), last)
    assert (only_one.stored, only_one.rewritten) == (1, 0)
    assert collector.evaluated() == {"c00": confirmed_at.isoformat() + "Z", "c01": last.isoformat() + "Z"}
    # An older run arriving late changes nothing and does not move c01's time back.
    late = collector.send(collector.report(START + dt.timedelta(minutes=30), both), last + dt.timedelta(minutes=1))
    assert late.superseded == 2 and late.rewritten == 0
    assert collector.evaluated() == {"c00": confirmed_at.isoformat() + "Z", "c01": last.isoformat() + "Z"}
    # Both come back unchanged: each is written once (the report that left c00 out froze its time, the
    # late one c01's), then found unchanged again.
    back = START + dt.timedelta(hours=3)
    assert collector.send(collector.report(back, both), back).rewritten == 2
    after = START + dt.timedelta(hours=4)
    assert collector.send(collector.report(after, both), after).rewritten == 0
    assert collector.evaluated() == {"c00": after.isoformat() + "Z", "c01": after.isoformat() + "Z"}


def test_the_digest_of_migration_0009_is_the_collectors() -> None:
    import importlib.util
    from pathlib import Path

    import collector.storage.migrations as migrations

    path = Path(migrations.__file__).parent / "versions" / "0009_store_what_changed.py"
    spec = importlib.util.spec_from_file_location("rampart_migration_0009", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    for observed, expectation, reason in (
        ({"a": [1, "é"]}, None, ""),
        (None, {"eq": True}, "why\x1fnot"),
        ([], [], "x"),
    ):
        expected = result_digest("ab" * 32, msgspec.Raw(json.dumps(observed).encode()), expectation, reason)
        observed_text = None if observed is None else json.dumps(observed)
        assert migration._digest("ab" * 32, observed_text, json.dumps(expectation), reason) == expected


def test_0009_marks_each_host_with_its_last_report_and_fills_the_digests_it_wrote(database_url: str) -> None:
    """Rows as a 0008 collector left them: the next identical report does not rewrite them."""
    engine = make_engine(database_url, 1)
    try:
        migrate.upgrade(engine, "0008")
        key = wire.generate_key()
        agent_id = wire.agent_id_for(key)
        with write_tx(engine) as connection:
            token, _ = registry.create_token(
                connection, group="default", max_uses=1, valid_for=dt.timedelta(days=1), created_by="t", now=START
            )
            registry.enroll(
                connection, agent_id=agent_id, public_key=wire.public_key_text(key), token=token,
                host={"hostname": "h1"}, now=START,
            )  # fmt: skip
            subject_id = connection.execute(sa.text("SELECT subject_id FROM agents")).scalar_one()
            store_policy(connection, FLEET_POLICY, now=START)
            for number, check in ((1, "c00"), (2, "c01")):
                connection.execute(
                    sa.text(
                        "INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, result_count, "
                        "dropped, signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib) "
                        "VALUES (:r, :a, :s, :t, '', 1, 0, 'POST', '/', 0, '', '', :b)"
                    ),
                    {"r": f"report-{number:04d}", "a": agent_id, "s": subject_id, "t": START, "b": b""},
                )
                result = make_result(check, "fail", observed={"v": number})
                connection.execute(
                    sa.text(
                        "INSERT INTO latest_results (subject_id, policy_id, check_id, status, severity, title, reason, "
                        "observed, expectation, policy_version, policy_hash, evaluated_at, since, report_id) "
                        "VALUES (:s, :p, :c, 'fail', 'medium', '', :reason, :o, :e, :v, :h, :t, :t, :r)"
                    ),
                    {
                        "s": subject_id, "p": FLEET_POLICY.id, "c": check, "reason": result["reason"],
                        "o": json.dumps(result["observed"]), "e": json.dumps(result["expectation"]),
                        "v": FLEET_POLICY.version, "h": FLEET_POLICY.sha256, "t": START, "r": f"report-{number:04d}",
                    },
                )  # fmt: skip
        migrate.upgrade(engine)
        with engine.connect() as connection:
            mark = connection.execute(sa.select(models.subjects.c.last_report_id, models.subjects.c.last_evaluated_at))
            assert mark.one() == ("report-0002", START)
            latest = models.latest_results.c
            digests = dict(connection.execute(sa.select(latest.check_id, latest.digest)).all())
            if engine.dialect.name == "postgresql":
                assert connection.execute(sa.text("SELECT to_regproc('rampart_store_report')")).scalar() is None
        assert digests["c00"] is None and digests["c01"] is not None  # only what the last report wrote
    finally:
        engine.dispose()
    collector = Collector.__new__(Collector)
    collector.engine = make_engine(database_url, 2)
    collector.waivers, collector.assignments = WaiverCache(), AssignmentCache("default", GRACE)
    collector.fast = (
        FastReportStore(database_url, 1, collector.waivers, collector.assignments)
        if available(collector.engine)
        else None
    )
    collector.agent_id = agent_id
    try:
        later = START + dt.timedelta(hours=1)
        same = [make_result("c00", "fail", observed={"v": 1}), make_result("c01", "fail", observed={"v": 2})]
        outcome = collector.send(collector.report(later, same), later)
        assert (outcome.stored, outcome.rewritten, outcome.changed) == (2, 1, 0)  # c00 had no digest: once
    finally:
        collector.close()
