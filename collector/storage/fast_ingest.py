"""Storing agent reports on PostgreSQL in one round trip each (the function of migration 0005).

The result is the same as `store_agent_report` in collector/storage/ingest.py, which SQLite and cloud
runs use (tests/collector/test_fast_ingest.py stores the same reports both ways and compares every
table). What differs is the cost: one call, prepared once per connection, in autocommit so that the
call is the transaction, on connections of its own (plain psycopg, without a ping or a reset on checkout:
a call on a lost connection is made again on a new one; the report id makes a second call harmless, it
answers "duplicate" if the first had committed).

Waivers are judged here, and which results count (what is assigned to the agent's group,
collector/storage/assignments.py), with the cached waivers, assignments and subject the function then
checks it was given (stale -> judged again with fresh ones).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Engine

from checks.results import Status, Subject, SubjectKind
from collector.storage.assignments import Assigned, AssignmentCache
from collector.storage.engine import make_engine
from collector.storage.ingest import (
    IncomingResult,
    ParsedReport,
    SignedEvidence,
    StoreOutcome,
    WaiverIndex,
    judged_status,
    newest_results,
)
from collector.storage.models import COUNTER_SHARDS
from collector.storage.registry import AgentRevoked
from collector.storage.report_codec import encode
from collector.storage.unavailable import DatabaseUnavailable, is_connection_failure
from collector.storage.waivers import WaiverCache

log = logging.getLogger(__name__)

CALL = (
    "SELECT outcome, stored, changed, superseded, subject_kind, subject_ext_id, subject_name, subject_group "
    "FROM rampart_store_report(" + ", ".join(["%s"] * 20) + ")"
)
_RETRYABLE_STATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_ATTEMPTS = 5  # calls that fail (a lost connection, a deadlock) before the report is given up on
# Answers that the collector's caches were stale: each refreshes one cache, so a few suffice, but they do
# not count against _ATTEMPTS (a call after a reconnect often meets a stale cache: that is not a failure).
_REFRESHES = 6
_WAIVED = Status.WAIVED.value


class StoreConnections:
    """At most `size` autocommit connections, reused newest first; one that fails is closed, not reused."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._slots:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                connection = psycopg.connect(self._conninfo, autocommit=True)
            try:
                yield connection
            except BaseException:
                connection.close()  # whatever state it is in, it is not handed out again
                raise
            if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
                connection.close()
            else:
                self._idle.put(connection)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(frozen=True)
class ExpectedSubject:
    kind: str
    ext_id: str
    name: str
    group: str


class FastReportStore:
    """Stores agent reports through rampart_store_report; one per collector process."""

    def __init__(self, database_url: str, pool_size: int, waivers: WaiverCache, assignments: AssignmentCache) -> None:
        # The SQLAlchemy engine only reloads waivers and assignments; the calls go through plain psycopg.
        self._base = make_engine(database_url, 1, pre_ping=True, custom_plans=False)
        conninfo = self._base.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.connections = StoreConnections(conninfo, pool_size)
        self.waivers = waivers
        self.assignments = assignments
        self._subjects: dict[str, ExpectedSubject] = {}
        self._lock = threading.Lock()

    def dispose(self) -> None:
        self.connections.close()
        self._base.dispose()

    def store(self, parsed: ParsedReport, body: bytes, evidence: SignedEvidence, now: dt.datetime) -> StoreOutcome:
        """Store one report (a transaction of its own). Raises AgentRevoked when the agent may not report,
        DatabaseUnavailable when the database could not be reached in _ATTEMPTS tries (the API answers 503
        with Retry-After: the agent keeps the report and sends it again)."""
        compressed = zlib.compress(body, 1)
        today = now.date()
        expected = self._subjects.get(parsed.agent_id)
        waivers = self.waivers.cached(today)
        assigned = None if expected is None else self.assignments.cached(expected.group)
        refused: dict[str, int] = {}
        failures = refreshes = 0
        while True:
            try:
                if waivers is None:
                    waivers = self._reload_waivers(today)
                if expected is not None and assigned is None:
                    assigned = self._reload_assigned(expected.group)
            except sa.exc.DBAPIError as exc:
                if not is_connection_failure(exc):
                    raise
                failures += 1
                self._after_failure(parsed, failures, exc)
                continue
            version, index = waivers
            if expected is None or assigned is None:  # the call answers stale_subject before it reads rows
                policy_version, rows = -1, "[]"
            else:
                policy_version = assigned[0]
                counted, refused = assigned[1].admit(parsed.results, now)
                rows = _judged_rows(newest_results(counted, now), index, expected, today)
            params = (
                parsed.agent_id,
                *(_subject_params(expected)),
                version,
                policy_version,
                now,
                parsed.report_id,
                parsed.created_at,
                len(parsed.results),
                parsed.dropped,
                evidence.method,
                evidence.path,
                evidence.timestamp,
                evidence.content_sha256,
                evidence.signature,
                compressed,
                rows,
                COUNTER_SHARDS,
            )
            try:
                answer = self._call(params)
            except psycopg.Error as exc:
                if not (is_connection_failure(exc) or exc.sqlstate in _RETRYABLE_STATES):
                    raise
                failures += 1
                self._after_failure(parsed, failures, exc)
                continue
            outcome = answer[0]
            if outcome == "stored":
                return StoreOutcome(
                    duplicate=False, stored=answer[1], changed=answer[2], superseded=answer[3], not_counted=refused
                )
            if outcome == "duplicate":
                return StoreOutcome(duplicate=True)
            if outcome == "revoked":
                self._subjects.pop(parsed.agent_id, None)
                raise AgentRevoked(parsed.agent_id)
            if outcome == "stale_subject":
                expected = ExpectedSubject(*answer[4:8])
                assigned = self.assignments.cached(expected.group)
                with self._lock:
                    if len(self._subjects) > 500_000:
                        self._subjects.clear()
                    self._subjects[parsed.agent_id] = expected
            elif outcome == "stale_waivers":
                waivers = None
            elif outcome == "stale_policies":
                assigned = None
            else:
                raise RuntimeError(f"rampart_store_report answered {outcome!r}")
            refreshes += 1
            if refreshes > _REFRESHES:  # the caches never settle: a defect, not the database's state
                raise RuntimeError(f"report {parsed.report_id}: caches still stale after {_REFRESHES} refreshes")

    def _after_failure(self, parsed: ParsedReport, failures: int, exc: Exception) -> None:
        """Wait a little before the next try, or give up: DatabaseUnavailable for a connection that cannot
        be had (the caller answers 503), the error itself for a deadlock that keeps coming back."""
        error = type(getattr(exc, "orig", None) or exc).__name__
        if failures >= _ATTEMPTS:
            if is_connection_failure(exc):
                raise DatabaseUnavailable(f"report {parsed.report_id}: the database is unreachable ({error})") from exc
            raise exc
        log.warning("report store retried", extra={"attempt": failures, "error": error})
        time.sleep(0.01 * failures)

    def _reload_waivers(self, today: dt.date) -> tuple[int, WaiverIndex]:
        with self._base.connect() as connection, connection.begin():
            return self.waivers.reload(connection, today)

    def _reload_assigned(self, group: str) -> tuple[int, Assigned]:
        with self._base.connect() as connection, connection.begin():
            return self.assignments.reload(connection, group)

    def _call(self, params: tuple[Any, ...]) -> tuple[Any, ...]:
        with self.connections.connection() as connection:
            row = connection.execute(CALL, params, prepare=True).fetchone()
            assert row is not None
            return tuple(row)


def _subject_params(expected: ExpectedSubject | None) -> tuple[str | None, ...]:
    if expected is None:
        return (None, None, None, None)
    return (expected.kind, expected.ext_id, expected.name, expected.group)


def _judged_rows(
    results: Sequence[IncomingResult], index: WaiverIndex, expected: ExpectedSubject, today: dt.date
) -> str:
    """The results as rampart_store_report reads them, with the status the collector records."""
    who = Subject(SubjectKind(expected.kind), expected.ext_id, expected.name)
    group = expected.group
    rows = []
    for r in results:
        if index.has_check(r.check_id):
            status, waived_status, waiver_id = judged_status(r, index, who, group, today)
        else:  # no waiver here names the check: what judged_status gives, without asking
            status = r.status if r.status != _WAIVED or r.waived_status is None else r.waived_status
            waived_status = waiver_id = None
        rows.append(
            {
                "policy_id": r.policy_id,
                "check_id": r.check_id,
                "status": status,
                "waived_status": waived_status,
                "waiver_id": waiver_id,
                "severity": r.severity,
                "title": r.title,
                "reason": r.reason,
                "observed": r.observed,
                "expectation": r.expectation,
                "policy_version": r.policy_version,
                "policy_hash": r.policy_hash,
                "evaluated_at": None if r.evaluated_at is None else r.evaluated_at.isoformat(),
            }
        )
    return encode(rows).decode()


def available(engine: Engine) -> bool:
    """Whether this database has rampart_store_report (PostgreSQL, migrated to 0005 or later: the app
    refuses to serve an older schema)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        found = connection.execute(sa.text("SELECT to_regproc('rampart_store_report')")).scalar()
    return found is not None
