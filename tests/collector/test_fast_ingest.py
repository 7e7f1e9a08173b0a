"""One store pipeline: the same reports stored on SQLite and on PostgreSQL give the same tables.

The same agents, waivers and sequence of reports go into a SQLite database, through `store_agent_report`
(what the collector runs on SQLite, in one SQLAlchemy transaction), and into a fresh PostgreSQL schema,
through `FastReportStore` (what it runs on PostgreSQL: its own psycopg connections, two round trips);
every outcome and every row of every table they write must be the same. The sequence is random but
seeded and covers what the pipeline decides: new, unchanged (not rewritten) and flipped results, facts
that change under the same status, checks missing from a report, late (older) runs,
re-sent reports, unknown evaluation times, waived results with and without a waiver here, a waiver approved
and one revoked between reports (the cached waivers go stale), a host renamed (the cached subject goes
stale), a new policy version stored (the cached assignments go stale; results judged with the version it
replaced count for a while, then not), results for a policy or version never assigned or a check the
version does not have (not counted, kept in the raw report), and a revoked agent (its results retired).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks import wire
from checks.policy.loader import load_policy_document
from collector.storage import migrate, models, registry, waivers
from collector.storage.assignments import AssignmentCache
from collector.storage.engine import make_engine, run_write, write_tx
from collector.storage.fast_ingest import APPLICATION_NAME, FastReportStore, available
from collector.storage.ingest import SignedEvidence, parse_report, store_agent_report
from collector.storage.registry import AgentRevoked
from collector.storage.report_codec import decode_report
from collector.storage.waivers import WaiverCache
from tests.support.agents import make_result
from tests.support.databases import fresh_schema
from tests.support.policies import FLEET_POLICY, FLEET_POLICY_ID, fleet_document, store_policy

pytestmark = pytest.mark.postgres

CHECKS = [f"c{i:02d}" for i in range(12)]
STATUSES = ["pass", "fail", "error", "not_applicable", "waived"]
# Version 2 drops c11: a result for it judged with version 2 is for a check that version does not have.
VERSION_2 = load_policy_document(fleet_document("2.0.0", CHECKS[:-1]))
START = dt.datetime(2026, 11, 20, 8, 0, 0)
GRACE = dt.timedelta(hours=2)  # results judged with version 1 count until 2 h after version 2 was stored
EVIDENCE = SignedEvidence("POST", "/api/v1/reports", 1_790_000_000, "0" * 64, "s" * 86)
# Columns that differ by design: surrogate keys.
IGNORED = {"id"}
COMPARED = ["subjects", "reports", "latest_results", "result_intervals", "status_counts", "daily_changes",
            "check_catalog", "state_versions"]  # fmt: skip


@pytest.fixture
def two_schemas(pg_database: str | None, tmp_path: Path) -> Iterator[tuple[Engine, Engine, str]]:
    """(SQLite, PostgreSQL, PostgreSQL's URL), both migrated to head."""
    if pg_database is None:
        pytest.skip("RAMPART_TEST_PG_URL is empty: PostgreSQL half skipped")
    with ExitStack() as stack:
        python_url = f"sqlite:///{tmp_path / 'twin.db'}"
        fast_url = stack.enter_context(fresh_schema(pg_database))
        python_engine, fast_engine = make_engine(python_url, 2), make_engine(fast_url, 2)
        stack.callback(python_engine.dispose)
        stack.callback(fast_engine.dispose)
        for engine in (python_engine, fast_engine):
            migrate.upgrade(engine)
        yield python_engine, fast_engine, fast_url


class Twin:
    """Does every change to both databases, and stores each report on both (as the collector would)."""

    def __init__(self, python_engine: Engine, fast_engine: Engine, fast_url: str) -> None:
        self.engines = (python_engine, fast_engine)
        self.python_waivers, self.python_assignments = WaiverCache(), AssignmentCache("default", GRACE)
        self.fast = FastReportStore(fast_url, 2, WaiverCache(), AssignmentCache("default", GRACE))

    def both(self, work: Any) -> list[Any]:
        return [run_write(engine, work) for engine in self.engines]

    def store(self, agent_id: str, body: bytes, now: dt.datetime) -> tuple[Any, Any]:
        parsed = decode_report(body, agent_id)  # the one decoder, whatever the database
        assert parsed is not None
        try:
            python = run_write(
                self.engines[0],
                lambda c: store_agent_report(
                    c,
                    parsed,
                    body,
                    EVIDENCE,
                    now=now,
                    waivers=self.python_waivers.current,
                    assignments=self.python_assignments.current,
                ),
            )
            python_answer: Any = (
                python.duplicate,
                python.stored,
                python.changed,
                python.superseded,
                python.not_counted,
                python.rewritten,
            )
        except AgentRevoked:
            python_answer = "revoked"
        typed = decode_report(body, agent_id)
        assert typed is not None
        try:
            fast = self.fast.store(typed, body, EVIDENCE, now)
            fast_answer: Any = (
                fast.duplicate,
                fast.stored,
                fast.changed,
                fast.superseded,
                fast.not_counted,
                fast.rewritten,
            )
        except AgentRevoked:
            fast_answer = "revoked"
        return python_answer, fast_answer


def table_rows(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    table = models.metadata.tables[name]
    columns = [c for c in table.columns if c.name not in IGNORED]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(*columns)).all()
    return sorted(tuple(json.dumps(v, sort_keys=True, default=str) for v in row) for row in rows)


def judged_with(rng: random.Random, step: int) -> dict[str, Any]:
    """The policy a result names: mostly the version in force, sometimes one never assigned."""
    in_force = FLEET_POLICY if step < 100 else VERSION_2
    if step >= 100 and rng.random() < 0.15:  # an agent that has not picked up version 2 yet, or long since
        in_force = FLEET_POLICY
    choice = rng.random()
    if choice < 0.04:
        return {"policy_id": "made-up", "policy_hash": "e" * 64, "policy_version": "9"}
    if choice < 0.08:
        return {"policy_id": FLEET_POLICY_ID, "policy_hash": "f" * 64, "policy_version": "1.0.0"}
    return {"policy_id": in_force.id, "policy_hash": in_force.sha256, "policy_version": in_force.version}


def random_results(rng: random.Random, moment: dt.datetime, step: int) -> list[dict[str, Any]]:
    chosen = rng.sample(CHECKS, rng.randint(1, len(CHECKS)))  # some checks missing from a report
    results = []
    run = moment - dt.timedelta(hours=rng.randint(0, 50) / 10)  # an agent stamps its results with the run's time
    for check in chosen:
        # Often the same as before (stored unchanged), often not (status or facts changed).
        status = rng.choice(STATUSES) if rng.random() < 0.5 else "pass"
        late = rng.random() < 0.1
        when = moment - dt.timedelta(hours=30) if late else run
        if rng.random() < 0.1:
            when = moment - dt.timedelta(hours=rng.randint(0, 50) / 10)
        evaluated_at = "" if rng.random() < 0.05 else when.isoformat() + "Z"
        results.append(
            make_result(
                check,
                status,
                **judged_with(rng, step),
                severity=rng.choice(["low", "high", "critical"]),  # what the result claims: not what is stored
                observed={"value": rng.randint(0, 3) if rng.random() < 0.3 else 0},
                evaluated_at=evaluated_at,
                waived_status=rng.choice(["fail", "error"]) if status == "waived" else None,
                waiver_id="wv-agent" if status == "waived" else None,
            )
        )
    if rng.random() < 0.1 and results:  # the same check twice in one report: the later evaluation counts
        results.append(dict(results[0], status="pass", waived_status=None, waiver_id=None))
    return results


def test_sqlite_and_postgresql_store_exactly_the_same(two_schemas: tuple[Engine, Engine, str]) -> None:
    python_engine, fast_engine, fast_url = two_schemas
    assert not available(python_engine) and available(fast_engine)
    twin = Twin(python_engine, fast_engine, fast_url)
    rng = random.Random(20261126)
    keys = [wire.generate_key() for _ in range(6)]
    agent_ids = [wire.agent_id_for(key) for key in keys]

    def enrol(connection: Any) -> None:
        tokens = {}
        for group in ("servers", "laptops"):
            tokens[group], _ = registry.create_token(
                connection, group=group, max_uses=10, valid_for=dt.timedelta(days=1), created_by="t", now=START
            )
        for index, (key, agent_id) in enumerate(zip(keys, agent_ids, strict=True)):
            registry.enroll(
                connection, agent_id=agent_id, public_key=wire.public_key_text(key),
                token=tokens["servers" if index % 2 else "laptops"], host={"hostname": f"host-{index}"}, now=START,
            )  # fmt: skip

    twin.both(enrol)
    twin.both(lambda c: store_policy(c, FLEET_POLICY, now=START))

    def waiver(waiver_id: str, check: str, scope: dict[str, Any]) -> Any:
        def work(connection: Any) -> None:
            waivers.request(
                connection, check_id=check, policy_id=None, scope=scope, justification="kept for the test",
                expires=START.date() + dt.timedelta(days=60), requested_by="alice", now=START, waiver_id=waiver_id,
            )  # fmt: skip
            waivers.approve(connection, waiver_id, approver="bob", now=START)

        return work

    twin.both(waiver("wv-servers", "c01", {"groups": ["servers"]}))
    sent: list[tuple[str, bytes]] = []
    answers: list[Any] = []
    for step in range(160):
        now = START + dt.timedelta(minutes=10 * step)
        if step == 40:
            twin.both(waiver("wv-host", "c02", {"hosts": ["host-2"]}))  # cached waivers now stale
        if step == 70:
            twin.both(lambda c, now=now: waivers.close(c, "wv-servers", by="bob", now=now))
        if step == 90:  # a renamed host: the cached subject is stale
            twin.both(lambda c, now=now: registry.checkin(c, agent_ids[2], {"hostname": "host-2-renamed"}, now))
        if step == 100:  # a new version: the cached assignments go stale
            twin.both(lambda c, now=now: store_policy(c, VERSION_2, now=now))
        if step == 120:
            twin.both(lambda c, now=now: registry.revoke_agent(c, agent_ids[5], by="admin", now=now))
        if sent and rng.random() < 0.1:
            agent_id, body = rng.choice(sent)  # a re-send
        else:
            index = rng.randrange(len(agent_ids))
            agent_id = agent_ids[index]
            body = json.dumps(wire.make_report(agent_id=agent_id, results=random_results(rng, now, step))).encode()
            sent.append((agent_id, body))
        python_answer, fast_answer = twin.store(agent_id, body, now)
        assert python_answer == fast_answer, f"step {step}: SQLite {python_answer}, PostgreSQL {fast_answer}"
        answers.append(fast_answer)
    twin.fast.dispose()

    for name in COMPARED:
        python_rows, fast_rows = table_rows(python_engine, name), table_rows(fast_engine, name)
        assert python_rows, f"{name} is empty: the sequence exercised nothing"
        assert python_rows == fast_rows, f"{name} differs"
    with fast_engine.connect() as connection:
        flips = connection.execute(sa.text("SELECT count(*) FROM result_intervals WHERE valid_to IS NOT NULL")).scalar()
        waived = connection.execute(sa.text("SELECT count(*) FROM result_intervals WHERE status = 'waived'")).scalar()
        retired = connection.execute(sa.text("SELECT count(*) FROM latest_results WHERE status = 'retired'")).scalar()
        versions = connection.execute(sa.text("SELECT DISTINCT policy_version FROM latest_results")).scalars().all()
        severities = connection.execute(sa.text("SELECT DISTINCT severity FROM latest_results")).scalars().all()
    assert flips and flips > 50 and waived and retired
    assert set(versions) == {"1.0.0", "2.0.0"}  # nothing of the made-up policy or version
    assert set(severities) == {"medium"}  # the policy's severity, not what each result claimed
    unchanged = sum(a[1] - a[5] for a in answers if isinstance(a, tuple) and not a[0])
    assert unchanged > 20, unchanged  # results found unchanged, their rows not rewritten, on both databases
    refusals: dict[str, int] = {}
    for answer in answers:
        if isinstance(answer, tuple):
            for reason, n in answer[4].items():
                refusals[reason] = refusals.get(reason, 0) + n
    assert set(refusals) == {"policy_not_assigned", "policy_version_unknown", "policy_version_replaced",
                             "check_not_in_policy"}, refusals  # fmt: skip


def enrol_one_agent(engine: Engine) -> str:
    key = wire.generate_key()
    agent_id = wire.agent_id_for(key)
    with write_tx(engine) as connection:
        token, _ = registry.create_token(
            connection, group="g", max_uses=1, valid_for=dt.timedelta(days=1), created_by="t", now=START
        )
        registry.enroll(
            connection, agent_id=agent_id, public_key=wire.public_key_text(key), token=token,
            host={"hostname": "h"}, now=START,
        )  # fmt: skip
    return agent_id


def test_a_revoked_agent_and_an_unknown_one_are_refused_with_nothing_written(
    two_schemas: tuple[Engine, Engine, str],
) -> None:
    _python_engine, fast_engine, fast_url = two_schemas
    store = FastReportStore(fast_url, 1, WaiverCache(), AssignmentCache("default", GRACE))
    agent_id = enrol_one_agent(fast_engine)
    with write_tx(fast_engine) as connection:
        registry.revoke_agent(connection, agent_id, by="admin", now=START)
    stranger = wire.agent_id_for(wire.generate_key())
    for who in (agent_id, stranger):
        body = json.dumps(wire.make_report(agent_id=who, results=[make_result("c00", "fail")])).encode()
        with pytest.raises(AgentRevoked):
            store.store(parse_report(json.loads(body), who), body, EVIDENCE, START)
    store.dispose()
    with fast_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM reports")).scalar() == 0
        assert connection.execute(sa.text("SELECT count(*) FROM latest_results")).scalar() == 0


def test_a_connection_lost_between_reports_is_replaced_and_the_report_stored_once(
    two_schemas: tuple[Engine, Engine, str],
) -> None:
    _python_engine, fast_engine, fast_url = two_schemas
    store = FastReportStore(fast_url, 1, WaiverCache(), AssignmentCache("g", GRACE))
    agent_id = enrol_one_agent(fast_engine)
    run_write(fast_engine, lambda c: store_policy(c, FLEET_POLICY, group="g", now=START))

    def report(status: str) -> tuple[Any, bytes]:
        body = json.dumps(wire.make_report(agent_id=agent_id, results=[make_result("c00", status)])).encode()
        return decode_report(body, agent_id), body

    try:
        first = store.store(*report("fail"), EVIDENCE, START)
        assert first.stored == 1
        # The server ends the store's connection while it is idle (a restart, an idle timeout, a failover).
        with fast_engine.connect() as connection:
            ended = connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND application_name = :name"
                ),
                {"name": APPLICATION_NAME},
            ).all()
        assert ended == [(True,)]
        second = store.store(*report("pass"), EVIDENCE, START + dt.timedelta(minutes=5))
        assert second.stored == 1 and second.changed == 1 and not second.duplicate
    finally:
        store.dispose()
    with fast_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM reports")).scalar() == 2
        assert connection.execute(sa.text("SELECT status FROM latest_results")).scalar() == "pass"
