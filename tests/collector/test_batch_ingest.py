"""The bulk entry points store exactly what the ordinary ones do.

One database gets a small fleet the way the collector stores it: each agent enrolled with
`registry.enroll`, each report stored alone with `store_agent_report` in its own transaction. A twin
gets the same through the bulk paths that load the benchmarks' fleets (bench/_fleet.py):
`registry.enroll_many`, and `batch_ingest.store_agent_reports` with several reports per call (an agent's
next reports in the same call, so in later waves). Every outcome and every row of every table they write
must be the same, on SQLite and on PostgreSQL. The reports cover what the pipeline decides: first
reports, unchanged and flipped results, facts that change under the same status, a check left out, an
older run arriving late, a re-sent report (in the same call and in a later one), a waived result.
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
from collector.storage import migrate, models, registry
from collector.storage.assignments import AssignmentCache
from collector.storage.batch_ingest import IncomingReport, store_agent_reports, waves
from collector.storage.engine import make_engine, run_write, write_tx
from collector.storage.ingest import SignedEvidence, StoreOutcome, parse_report, store_agent_report
from collector.storage.registry import AgentRevoked
from collector.storage.report_codec import decode_report
from collector.storage.waivers import WaiverCache
from tests.support.agents import make_result
from tests.support.databases import fresh_schema
from tests.support.policies import FLEET_POLICY, store_policy

CHECKS = [f"c{i:02d}" for i in range(8)]
START = dt.datetime(2026, 9, 1, 8, 0, 0)
EVIDENCE = SignedEvidence("POST", "/api/v1/reports", 1_790_000_000, "0" * 64, "s" * 86)
COMPARED = ["subjects", "agents", "enrollment_tokens", "audit_log", "reports", "latest_results",
            "result_intervals", "status_counts", "daily_changes", "state_versions"]  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def twins(request: pytest.FixtureRequest, tmp_path: Path, pg_database: str | None) -> Iterator[tuple[Engine, Engine]]:
    """(one by one, in bulk): two empty databases of one kind, migrated to head."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            urls = [f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'bulk.db'}"]
        else:
            if pg_database is None:
                pytest.skip("RAMPART_TEST_PG_URL is empty: PostgreSQL half skipped")
            urls = [stack.enter_context(fresh_schema(pg_database)) for _ in range(2)]
        engines = [make_engine(url, 2) for url in urls]
        for engine in engines:
            stack.callback(engine.dispose)
            migrate.upgrade(engine)
            run_write(engine, lambda connection: store_policy(connection, FLEET_POLICY, "default"))
        yield engines[0], engines[1]


def table_rows(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    table = models.metadata.tables[name]
    columns = [c for c in table.columns if c.name != "id"]  # surrogate keys differ by design
    query = sa.select(*columns)
    if name == "audit_log":  # the policy's rows were written at each database's own clock
        query = query.where(~table.c.action.startswith("policy."))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return sorted(tuple(json.dumps(v, sort_keys=True, default=str) for v in row) for row in rows)


def copy_tokens(source: Engine, target: Engine) -> None:
    """The same enrolment tokens (and their audit rows) in both databases: a token's secret is random."""
    tokens, audit = models.enrollment_tokens, models.audit_log
    with source.connect() as connection:
        token_rows = [dict(row._mapping) for row in connection.execute(sa.select(tokens))]
        audit_rows = [
            {k: v for k, v in row._mapping.items() if k != "id"}
            for row in connection.execute(sa.select(audit).where(audit.c.action == "enroll_token.create"))
        ]
    with write_tx(target) as connection:
        connection.execute(tokens.insert(), token_rows)
        connection.execute(audit.insert(), audit_rows)


def fleet_reports(agent_ids: list[str], rng: random.Random) -> list[tuple[str, bytes, dt.datetime]]:
    """(agent, body, moment) in the order stored: first reports, then rounds of changes and odd cases."""
    statuses = {agent: {check: rng.choice(["pass", "fail"]) for check in CHECKS} for agent in agent_ids}
    facts = {agent: {check: 0 for check in CHECKS} for agent in agent_ids}
    made: list[tuple[str, bytes, dt.datetime]] = []

    def body(agent: str, moment: dt.datetime, checks: list[str], evaluated: dt.datetime | None = None) -> bytes:
        stamp = (evaluated or moment).isoformat() + "Z"
        results = [
            make_result(check, statuses[agent][check], evaluated_at=stamp,
                        observed={"value": check, "ok": statuses[agent][check] == "pass", "n": facts[agent][check]})
            for check in checks
        ]  # fmt: skip
        if agent == agent_ids[0] and "c01" in checks and statuses[agent]["c01"] == "fail":
            results[checks.index("c01")] = make_result("c01", "waived", waived_status="fail", waiver_id="w-none",
                                                       evaluated_at=stamp)  # fmt: skip
        report = wire.make_report(agent_id=agent, results=results, created_at=stamp, host={"hostname": agent[:12]})
        return json.dumps(report).encode()

    for agent in agent_ids:
        made.append((agent, body(agent, START, CHECKS), START))
    for step in range(1, 9):
        for agent in rng.sample(agent_ids, len(agent_ids)):
            moment = START + dt.timedelta(days=step * 7, hours=rng.randrange(24))
            for check in rng.sample(CHECKS, rng.randrange(0, 3)):
                statuses[agent][check] = "pass" if statuses[agent][check] == "fail" else "fail"
            facts[agent][rng.choice(CHECKS)] += 1  # a fact that changes under the same status
            checks = CHECKS if rng.random() < 0.8 else CHECKS[:-1]  # sometimes a check left out
            made.append((agent, body(agent, moment, checks), moment))
            if rng.random() < 0.3:  # the same agent again in the same call
                later = moment + dt.timedelta(hours=1)
                made.append((agent, body(agent, later, CHECKS), later))
            if rng.random() < 0.15:  # an older run arriving late
                made.append((agent, body(agent, moment, CHECKS, evaluated=moment - dt.timedelta(days=3)), moment))
            if rng.random() < 0.15:  # a re-send of the report just made
                made.append(made[-1])
    made.append(made[5])  # a re-send long after, in a later call
    return made


def test_bulk_enrolment_and_batched_reports_store_exactly_what_one_by_one_does(twins: tuple[Engine, Engine]) -> None:
    one, bulk = twins
    keys = [wire.generate_key() for _ in range(7)]
    agents = [registry.NewAgent(wire.agent_id_for(k), wire.public_key_text(k), {"hostname": f"h{i}", "os": "linux"})
              for i, k in enumerate(keys)]  # fmt: skip
    with write_tx(one) as connection:
        tokens = {group: registry.create_token(connection, group=group, max_uses=10, valid_for=dt.timedelta(days=1),
                                               created_by="test", now=START)[0]
                  for group in ("default", "servers")}  # fmt: skip
    copy_tokens(one, bulk)
    groups = {agent.agent_id: ("default", "servers")[i % 2] for i, agent in enumerate(agents)}
    with write_tx(one) as connection:  # in the order enroll_many takes them (subject ids follow it)
        for agent in sorted(agents, key=lambda a: groups[a.agent_id]):
            registry.enroll(connection, agent_id=agent.agent_id, public_key=agent.public_key,
                            token=tokens[groups[agent.agent_id]], host=agent.host, now=START)  # fmt: skip
    with write_tx(bulk) as connection:
        for group, token in tokens.items():
            answers = registry.enroll_many(connection, [a for a in agents if groups[a.agent_id] == group], token=token,
                                           now=START)  # fmt: skip
            assert all(answer.created and answer.group == group for answer in answers)
        # Enrolling again with the same key and token gives the enrolment back, as enroll does.
        again = registry.enroll_many(connection, agents[:1], token=tokens["default"], now=START)
        assert again == [registry.Enrolment(agents[0].agent_id, "default", created=False)]

    made = fleet_reports([a.agent_id for a in agents], random.Random(14))
    batches = [[incoming(*item) for item in made[first : first + 9]] for first in range(0, len(made), 9)]
    assert any(len(waves(batch)) > 1 for batch in batches)  # an agent's next report in the same call

    alone: list[StoreOutcome] = []
    waivers, assignments = WaiverCache(), AssignmentCache("default", dt.timedelta(hours=2))
    for agent_id, body, moment in made:
        parsed = parse_report(json.loads(body), agent_id)

        def one_report(c: sa.Connection, p: Any = parsed, b: bytes = body, m: dt.datetime = moment) -> StoreOutcome:
            return store_agent_report(c, p, b, EVIDENCE, now=m, waivers=waivers.current,
                                      assignments=assignments.current)  # fmt: skip

        alone.append(run_write(one, one_report))

    batched: list[StoreOutcome] = []
    waivers, assignments = WaiverCache(), AssignmentCache("default", dt.timedelta(hours=2))
    for batch in batches:

        def many(c: sa.Connection, b: list[IncomingReport] = batch) -> list[StoreOutcome]:
            return store_agent_reports(c, b, waivers=waivers.current, assignments=assignments.current)

        batched += run_write(bulk, many)

    assert batched == alone
    assert sum(o.duplicate for o in alone) >= 2 and sum(o.superseded for o in alone) >= 1
    assert sum(o.changed for o in alone) > len(agents) * len(CHECKS)
    for name in COMPARED:
        assert table_rows(bulk, name) == table_rows(one, name), name


def incoming(agent: str, body: bytes, moment: dt.datetime) -> IncomingReport:
    """A report as the benchmarks load it: decoded as the collector decodes it (report_codec first)."""
    parsed = decode_report(body, agent) or parse_report(json.loads(body), agent)
    return IncomingReport(parsed, body, EVIDENCE, moment)


def test_a_batch_with_an_unknown_agent_is_refused_with_nothing_written(twins: tuple[Engine, Engine]) -> None:
    _, bulk = twins
    key = wire.generate_key()
    agent = wire.agent_id_for(key)
    body = json.dumps(wire.make_report(agent_id=agent, results=[make_result("c00")])).encode()
    with pytest.raises(AgentRevoked), write_tx(bulk) as connection:
        store_agent_reports(connection, [incoming(agent, body, START)], waivers=WaiverCache().current,
                            assignments=AssignmentCache("default", dt.timedelta(hours=2)).current)  # fmt: skip
    assert table_rows(bulk, "reports") == []
