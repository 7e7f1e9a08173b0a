"""Simulated hosts, enrolled and reporting through the collector's own code, in bulk.

Enrolment calls `registry.enroll_many` (collector/storage/registry.py: what `enroll`, behind POST
/api/v1/enroll, writes for each agent, a thousand agents in a few statements); reports are signed for real,
decoded as the collector decodes them (collector/storage/report_codec.py, else `parse_report`) and stored
with `batch_ingest.store_agent_reports` (collector/storage/batch_ingest.py: the collector's `admit` and
`plan_results`, 500 reports to a transaction, one statement per table for all of them), by `replay`, which
stores any schedule of reports back-dated to their moments (the store takes the moment it stores at as
the report's received time and the subject's last contact; the results' evaluation times are in the
bodies). No other writer: the latest rows, history intervals, counters, daily changes and marks are what
ingest writes. tests/collector/test_batch_ingest.py shows that the bulk paths write exactly what
`enroll` and `store_agent_report`, one by one, write. `Store.store` keeps the one-by-one path
(bench/ingest_inprocess.py measures it).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import multiprocessing
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import _support  # noqa: F401 - puts the repository on sys.path
import sqlalchemy as sa
from _support import CHECKS, ReportTemplate, utc_stamp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checks import wire
from collector.storage import migrate, registry
from collector.storage.assignments import AssignmentCache
from collector.storage.batch_ingest import IncomingReport, store_agent_reports
from collector.storage.engine import make_engine, read_tx, run_write, write_tx
from collector.storage.history import shard_of
from collector.storage.ingest import ParsedReport, SignedEvidence, parse_report, store_agent_report
from collector.storage.models import agents
from collector.storage.report_codec import decode_report
from collector.storage.waivers import WaiverCache
from tests.support.policies import store_fleet_policy

GROUPS = ("default", "servers", "laptops", "finance", "schools")
REPORT_PATH = "/api/v1/reports"


def flip_index(host: int, sequence: int, checks: int = CHECKS) -> int:
    """Which result report number `sequence` (1, 2, ...) of host `host` changes: about one in 40 per report,
    the same in every process that replays it."""
    return zlib.crc32(f"{host}:{sequence}".encode()) % checks


def flip_indices(host: int, sequence: int, flips: int, checks: int = CHECKS) -> set[int]:
    """The results a report changes when it changes `flips` draws of them (repeats fall together)."""
    if flips == 1:
        return {flip_index(host, sequence, checks)}
    return {zlib.crc32(f"{host}:{sequence}:{k}".encode()) % checks for k in range(flips)}


@dataclass
class Fleet:
    """N simulated agents: each its own Ed25519 key, and the statuses its next report will carry."""

    keys: list[Ed25519PrivateKey]
    agent_ids: list[str]
    statuses: list[bytearray]
    sent: list[int] = field(default_factory=list)  # reports acknowledged so far, per host
    template: ReportTemplate = field(default_factory=ReportTemplate)
    flips: int = 1  # draws of results each report after the first changes (flip_indices)

    @classmethod
    def generate(cls, count: int, seed: int = 1, fail_rates: Sequence[float] | None = None, flips: int = 1) -> Fleet:
        rng = random.Random(seed)
        rates = fail_rates or [0.02 + 0.4 * (i % 7) / 7 for i in range(CHECKS)]
        keys = [wire.generate_key() for _ in range(count)]
        return cls(
            keys=keys,
            agent_ids=[wire.agent_id_for(key) for key in keys],
            statuses=[bytearray(1 if rng.random() < rate else 0 for rate in rates) for _ in range(count)],
            sent=[0] * count,
            flips=flips,
        )

    def __len__(self) -> int:
        return len(self.keys)

    @staticmethod
    def hostname(host: int) -> str:
        return f"host-{host:06d}"

    def next_statuses(self, host: int, sequence: int) -> bytearray:
        """The statuses of the host's report number `sequence`, given those of the one before it (the first
        report, sequence 1, sends the initial statuses unchanged)."""
        statuses = bytearray(self.statuses[host])
        if sequence > 1:
            for index in flip_indices(host, sequence, self.flips):
                statuses[index] ^= 1
        return statuses

    def acknowledged(self, host: int, sequence: int) -> None:
        """Report `sequence` of `host` was stored: the next one builds on its statuses."""
        assert sequence == self.sent[host] + 1, (host, sequence, self.sent[host])
        self.statuses[host] = self.next_statuses(host, sequence)
        self.sent[host] = sequence

    def body(self, host: int, sequence: int, evaluated_at: str) -> bytes:
        return self.template.body(
            self.agent_ids[host],
            str(uuid.uuid4()),
            self.hostname(host),
            self.next_statuses(host, sequence),
            evaluated_at,
        )

    def failing(self) -> int:
        """Failing results in the fleet's last acknowledged reports (what the collector must hold)."""
        return sum(sum(statuses) for host, statuses in enumerate(self.statuses) if self.sent[host])


def enrol(
    engine: sa.Engine,
    fleet: Fleet,
    *,
    groups: Sequence[str] = ("default",),
    batch: int = 1000,
    processes: int = 2,
    at: dt.datetime | None = None,
) -> float:
    """Enrol every host with registry.enroll_many (`batch` agents per transaction, one call per group),
    from `processes` processes on PostgreSQL, each with its own token per group (a token's use count is a
    row every enrolment updates); hosts are spread over `groups` in turn, enrolled `at` (default now).
    Returns the seconds it took."""
    began = time.perf_counter()
    if engine.dialect.name != "postgresql":
        processes = 1
    now = (at or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
    tokens: list[dict[str, str]] = [{} for _ in range(processes)]
    with write_tx(engine) as connection:
        for index in range(processes):
            for group in groups:
                tokens[index][group], _ = registry.create_token(
                    connection,
                    group=group,
                    max_uses=len(fleet),
                    valid_for=dt.timedelta(hours=6),
                    created_by="bench",
                    now=now,
                )
    url = engine.url.render_as_string(hide_password=False)
    if processes == 1:
        _enrol_share(url, fleet, range(len(fleet)), groups, tokens[0], batch, now)
    else:
        context = multiprocessing.get_context("fork")
        children = [
            context.Process(
                target=_enrol_share,
                args=(url, fleet, range(index, len(fleet), processes), groups, tokens[index], batch, now),
            )
            for index in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()
        if any(child.exitcode for child in children):
            raise RuntimeError("enrolling the fleet failed")
    return time.perf_counter() - began


def _enrol_share(
    url: str,
    fleet: Fleet,
    hosts: range,
    groups: Sequence[str],
    tokens: dict[str, str],
    batch: int,
    now: dt.datetime,
) -> None:
    engine = make_engine(url, 1)
    for start in range(0, len(hosts), batch):
        by_group: dict[str, list[registry.NewAgent]] = {}
        for host in hosts[start : start + batch]:
            by_group.setdefault(groups[host % len(groups)], []).append(
                registry.NewAgent(
                    fleet.agent_ids[host],
                    wire.public_key_text(fleet.keys[host]),
                    {"hostname": fleet.hostname(host), "os": "linux", "os_version": "12", "agent_version": "0.1"},
                )
            )
        with write_tx(engine) as connection:
            for group, enrolling in by_group.items():
                registry.enroll_many(connection, enrolling, token=tokens[group], now=now)
    engine.dispose()


def _parse(body: bytes, agent_id: str) -> ParsedReport:
    return parse_report(json.loads(body), agent_id)


def _decode(body: bytes, agent_id: str) -> ParsedReport:
    """As the collector decodes a report: the typed decoder, or parse_report where it declines."""
    return decode_report(body, agent_id) or _parse(body, agent_id)


class Store:
    """collector/storage/ingest.py's store, as the collector calls it, for reports made here."""

    def __init__(self, engine: sa.Engine, default_group: str = "default") -> None:
        self.engine = engine
        self.waivers = WaiverCache()
        self.assignments = AssignmentCache(default_group, dt.timedelta(hours=24))

    def store(self, items: Iterable[tuple[Ed25519PrivateKey, str, bytes, dt.datetime]], per_transaction: int) -> int:
        """Store (key, agent_id, body, moment) reports one by one with `store_agent_report`, as the collector
        does, `per_transaction` to a transaction. Returns the reports stored (duplicates are not)."""

        def write(lot: list[IncomingReport], connection: sa.Connection) -> int:
            count = 0
            for report in lot:
                outcome = store_agent_report(
                    connection,
                    report.parsed,
                    report.body,
                    report.evidence,
                    now=report.now,
                    waivers=self.waivers.current,
                    assignments=self.assignments.current,
                )
                assert not outcome.not_counted, outcome.not_counted
                count += 0 if outcome.duplicate else 1
            return count

        return self._in_transactions(self._incoming(items, _parse), per_transaction, write)

    def load(self, items: Iterable[tuple[Ed25519PrivateKey, str, bytes, dt.datetime]], per_transaction: int) -> int:
        """The same reports in bulk: `per_transaction` to one call of batch_ingest.store_agent_reports, decoded
        as the collector decodes them (report_codec first). Returns the reports stored."""

        def write(lot: list[IncomingReport], connection: sa.Connection) -> int:
            outcomes = store_agent_reports(
                connection, lot, waivers=self.waivers.current, assignments=self.assignments.current
            )
            for outcome in outcomes:
                assert not outcome.not_counted, outcome.not_counted
            return sum(0 if outcome.duplicate else 1 for outcome in outcomes)

        return self._in_transactions(self._incoming(items, _decode), per_transaction, write)

    def _in_transactions(
        self,
        incoming: Iterable[IncomingReport],
        per_transaction: int,
        write: Callable[[list[IncomingReport], sa.Connection], int],
    ) -> int:
        """`incoming` in lots of `per_transaction`, each stored by `write` in a transaction of its own; the
        reports stored in all."""
        stored = 0
        lot: list[IncomingReport] = []
        for report in incoming:
            lot.append(report)
            if len(lot) >= per_transaction:
                stored += run_write(self.engine, functools.partial(write, lot))
                lot = []
        if lot:
            stored += run_write(self.engine, functools.partial(write, lot))
        return stored

    @staticmethod
    def _incoming(
        items: Iterable[tuple[Ed25519PrivateKey, str, bytes, dt.datetime]],
        decode: Callable[[bytes, str], ParsedReport],
    ) -> Iterator[IncomingReport]:
        """Each report signed as its agent signs it, and decoded."""
        for key, agent_id, body, moment in items:
            headers = wire.sign_request(key, agent_id, "POST", REPORT_PATH, body, int(moment.timestamp()))
            evidence = SignedEvidence(
                "POST",
                REPORT_PATH,
                int(headers[wire.HEADER_TIMESTAMP]),
                headers[wire.HEADER_CONTENT_SHA256],
                headers[wire.HEADER_SIGNATURE],
            )
            yield IncomingReport(decode(body, agent_id), body, evidence, moment.replace(tzinfo=None))


def prime(
    database_url: str, fleet: Fleet, *, at: dt.datetime | None = None, processes: int = 1, per_transaction: int = 500
) -> float:
    """Every host's first report (all its results new), through the store (`replay`). Returns the seconds."""
    moment = at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    return replay(database_url, fleet, [(moment, host) for host in range(len(fleet))], processes=processes,
                  per_transaction=per_transaction)  # fmt: skip


def replay(
    database_url: str,
    fleet: Fleet,
    schedule: Sequence[tuple[dt.datetime, int]],
    *,
    processes: int = 1,
    per_transaction: int = 500,
) -> float:
    """Each (moment, host) of `schedule`, in its order, as that host's next report, stored at that moment
    through the store in bulk (Store.load: batch_ingest.store_agent_reports), from `processes` processes on
    PostgreSQL. Each process takes the hosts of its own counter stripes, so that no two transactions wait
    for each other's counter rows. A host's reports must come in time order (an older run arriving late is
    kept in the raw report only). Returns the seconds it took."""
    began = time.perf_counter()
    engine = make_engine(database_url, 1)
    if engine.dialect.name != "postgresql":
        processes = 1  # one writer at a time
    with read_tx(engine) as connection:
        subject_of = {a: s for a, s in connection.execute(sa.select(agents.c.agent_id, agents.c.subject_id))}
    engine.dispose()
    stripe = [shard_of(subject_of[agent_id]) % processes for agent_id in fleet.agent_ids]
    shares = [[(moment, host) for moment, host in schedule if stripe[host] == index] for index in range(processes)]
    if processes == 1:
        _replay_share(database_url, fleet, shares[0], per_transaction)
    else:
        context = multiprocessing.get_context("fork")
        children = [
            context.Process(target=_replay_share, args=(database_url, fleet, share, per_transaction))
            for share in shares
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()
        failed = [child.exitcode for child in children if child.exitcode]
        if failed:
            raise RuntimeError(f"storing the reports failed in {len(failed)} process(es)")
    if processes > 1:  # the children's fleets were copies: move this one on as they did
        for _moment, host in schedule:
            fleet.acknowledged(host, fleet.sent[host] + 1)
    return time.perf_counter() - began


def _replay_share(
    database_url: str, fleet: Fleet, share: Sequence[tuple[dt.datetime, int]], per_transaction: int
) -> None:
    engine = make_engine(database_url, 1)

    def items() -> Iterator[tuple[Ed25519PrivateKey, str, bytes, dt.datetime]]:
        for moment, host in share:
            sequence = fleet.sent[host] + 1
            body = fleet.body(host, sequence, utc_stamp(moment))
            fleet.acknowledged(host, sequence)  # a failure to store it fails the whole replay
            yield fleet.keys[host], fleet.agent_ids[host], body, moment

    Store(engine).load(items(), per_transaction)
    engine.dispose()


def load_fleet(database_url: str, hosts: int, *, days: int = 60, later_reports: int = 1) -> dict[str, Any]:
    """A fleet for the query benchmarks: `hosts` hosts in five groups x 40 checks of the fleet policy,
    enrolled and reporting through the collector's code. Each host's first report is dated `days` ago,
    then `later_reports` more at random days since (each changing one result), so the history spans the
    period and the counters and daily changes are what ingest left."""
    engine = make_engine(database_url, 2)
    migrate.upgrade(engine)
    store_fleet_policy(engine)
    began = time.perf_counter()
    fleet = Fleet.generate(hosts, seed=4)
    enrolled = enrol(engine, fleet, groups=GROUPS)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = now - dt.timedelta(days=days)
    rng = random.Random(5)
    stored = prime(database_url, fleet, at=first, processes=2)
    for round_ in range(later_reports):
        # Reports are stored in date order per host (an older run arriving late is kept as raw only).
        offsets = sorted(
            ((rng.uniform(days * round_ / later_reports, days * (round_ + 1) / later_reports), host)
             for host in range(hosts)),
        )  # fmt: skip
        schedule = [(min(first + dt.timedelta(days=offset), now), host) for offset, host in offsets]
        replay(database_url, fleet, schedule, processes=2)
    loaded = time.perf_counter() - began
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {
        "hosts": hosts,
        "results": hosts * CHECKS,
        "reports": hosts * (1 + later_reports),
        "load_seconds": loaded,
        "enrol_seconds": enrolled,
        "first_reports_seconds": stored,
        "middle_agent": fleet.agent_ids[hosts // 2],
        "search": Fleet.hostname(min(4999, hosts - 1)),
        "failing": fleet.failing(),
    }
