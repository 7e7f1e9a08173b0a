"""Storing agent reports on PostgreSQL: the store pipeline's statements, in two round trips per report.

What is written is decided once, in Python, by `plan_results` (collector/storage/ingest.py), the same for
SQLite, cloud runs and this path; `tests/collector/test_fast_ingest.py` stores the same reports on SQLite
and here and compares every table. What this module adds is the cost: its own plain psycopg connections
(no SQLAlchemy on the way, no ping or reset on checkout), statements prepared once per connection, and
psycopg's pipeline mode, so that a report is two round trips whatever it holds:

1. lock the subject (marking it seen), read the agent's revocation and the waivers' and policies' state
   versions, keep the signed report (a known report_id makes it a no-op), read the subject's latest rows;
2. write what the plan says (changed latest rows, history, counters, the subject's mark) and commit.

A shared advisory lock, taken first, keeps a waiver change (which takes it exclusively before bumping the
version, collector/storage/waivers.py) from committing while a report judged with the old waivers is
being stored. The waivers and assignments come from the process's caches, checked against the versions
read in the transaction (stale: reloaded). A call on a lost connection, or one that meets a deadlock, is
made again from the start on another connection: the report id makes a second try harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Engine

from collector.storage.assignments import Assigned, AssignmentCache
from collector.storage.digest import json_text
from collector.storage.engine import make_engine
from collector.storage.history import change_deltas, opened_intervals
from collector.storage.ingest import (
    ParsedReport,
    Plan,
    Previous,
    SignedEvidence,
    StoreOutcome,
    SubjectRow,
    WaiverIndex,
    judge_with,
    plan_results,
)
from collector.storage.models import WAIVER_LOCK_KEY
from collector.storage.registry import AgentRevoked
from collector.storage.unavailable import DatabaseUnavailable, is_connection_failure
from collector.storage.waivers import WaiverCache

log = logging.getLogger(__name__)

APPLICATION_NAME = "rampart-store"  # how this path's connections show in pg_stat_activity
_RETRYABLE_STATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_ATTEMPTS = 5  # tries that fail (a lost connection, a deadlock) before the report is given up on
# Tries that met a stale cache: each refreshes one cache, so a few suffice, but they do not count against
# _ATTEMPTS (a try after a reconnect often meets a stale cache: that is not a failure).
_REFRESHES = 6

# --- the statements (each prepared once per connection) ---------------------------------------------------

WAIVER_LOCK = f"SELECT pg_advisory_xact_lock_shared({WAIVER_LOCK_KEY})"
# By the agent's key alone: with `revoked_at IS NULL` in the condition, a plan cached for any agent may
# walk the index of agents not revoked, all of them. The revocation is read by the next statement, once
# the subject is locked (a revocation locks it too, history.retire_subject).
LOCK_SUBJECT = (
    "UPDATE subjects SET last_seen = %(now)s, last_report_at = %(now)s "
    "WHERE id = (SELECT subject_id FROM agents WHERE agent_id = %(agent)s) "
    "RETURNING id, kind, ext_id, name, group_name, last_report_id, last_evaluated_at"
)
STATE = (
    "SELECT (SELECT revoked_at FROM agents WHERE agent_id = %(agent)s), "
    "coalesce((SELECT version FROM state_versions WHERE name = 'waivers'), 0), "
    "coalesce((SELECT version FROM state_versions WHERE name = 'policies'), 0)"
)
INSERT_REPORT = (
    "INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, result_count, dropped, "
    "signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib) "
    "SELECT %(report_id)s, a.agent_id, a.subject_id, %(now)s, %(created_at)s, %(result_count)s, %(dropped)s, "
    "%(method)s, %(path)s, %(timestamp)s, %(sha256)s, %(signature)s, %(body)s "
    "FROM agents a WHERE a.agent_id = %(agent)s AND a.revoked_at IS NULL "
    "ON CONFLICT (report_id) DO NOTHING RETURNING id"
)
# The subject's rows by the subject alone, so that only the indexes that lead with it can be used.
PREVIOUS = (
    "SELECT policy_id, check_id, status, waived_status, waiver_id, evaluated_at, since, digest, report_id "
    "FROM latest_results WHERE subject_id = (SELECT subject_id FROM agents WHERE agent_id = %(agent)s)"
)
UPSERT_LATEST = (
    "INSERT INTO latest_results (subject_id, policy_id, check_id, status, waived_status, waiver_id, severity, "
    "title, reason, observed, expectation, policy_version, policy_hash, evaluated_at, since, report_id, digest) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (subject_id, policy_id, check_id) DO UPDATE SET "
    "status = excluded.status, waived_status = excluded.waived_status, waiver_id = excluded.waiver_id, "
    "severity = excluded.severity, title = excluded.title, reason = excluded.reason, "
    "observed = excluded.observed, expectation = excluded.expectation, policy_version = excluded.policy_version, "
    "policy_hash = excluded.policy_hash, evaluated_at = excluded.evaluated_at, since = excluded.since, "
    "report_id = excluded.report_id, digest = excluded.digest"
)
FREEZE_LATEST = (
    "UPDATE latest_results SET evaluated_at = %s, digest = NULL "
    "WHERE subject_id = %s AND policy_id = %s AND check_id = %s"
)
CLOSE_INTERVAL = (
    "UPDATE result_intervals SET valid_to = %s "
    "WHERE subject_id = %s AND policy_id = %s AND check_id = %s AND valid_to IS NULL"
)
OPEN_INTERVAL = (
    "INSERT INTO result_intervals (subject_id, policy_id, check_id, status, policy_hash, valid_from, valid_to, "
    "report_id) VALUES (%s, %s, %s, %s, %s, %s, NULL, %s)"
)
ADD_COUNT = (
    "INSERT INTO status_counts AS sc (shard, group_name, policy_id, check_id, status, count) "
    "VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (shard, group_name, policy_id, check_id, status) DO UPDATE SET count = sc.count + excluded.count"
)
ADD_DAILY = (
    "INSERT INTO daily_changes AS dc (day, shard, group_name, policy_id, check_id, status, delta) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (day, shard, group_name, policy_id, check_id, status) DO UPDATE SET delta = dc.delta + excluded.delta"
)
MARK = "UPDATE subjects SET last_report_id = %s, last_evaluated_at = %s WHERE id = %s"


class StoreConnections:
    """At most `size` connections, reused newest first; one that fails is closed, not reused."""

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
                connection = psycopg.connect(self._conninfo, application_name=APPLICATION_NAME)
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


class _Stale(Exception):
    """The caches were older than the database's state: reloaded, try again."""


class FastReportStore:
    """Stores agent reports on PostgreSQL through the store pipeline; one per collector process."""

    def __init__(self, database_url: str, pool_size: int, waivers: WaiverCache, assignments: AssignmentCache) -> None:
        # The SQLAlchemy engine only reloads waivers and assignments; reports go through plain psycopg.
        self._base = make_engine(database_url, 1, pre_ping=True, custom_plans=False)
        conninfo = self._base.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.connections = StoreConnections(conninfo, pool_size)
        self.waivers = waivers
        self.assignments = assignments

    def dispose(self) -> None:
        self.connections.close()
        self._base.dispose()

    def store(self, parsed: ParsedReport, body: bytes, evidence: SignedEvidence, now: dt.datetime) -> StoreOutcome:
        """Store one report (a transaction of its own). Raises AgentRevoked when the agent may not report,
        DatabaseUnavailable when the database could not be reached in _ATTEMPTS tries (the API answers 503
        with Retry-After: the agent keeps the report and sends it again)."""
        report = {
            "agent": parsed.agent_id,
            "now": now,
            "report_id": parsed.report_id,
            "created_at": parsed.created_at,
            "result_count": len(parsed.results),
            "dropped": parsed.dropped,
            "method": evidence.method,
            "path": evidence.path,
            "timestamp": evidence.timestamp,
            "sha256": evidence.content_sha256,
            "signature": evidence.signature,
            "body": zlib.compress(body, 1),
        }
        failures = refreshes = 0
        while True:
            try:
                with self.connections.connection() as connection:
                    return self._store_once(connection, parsed, report, now)
            except _Stale:
                refreshes += 1
                if refreshes > _REFRESHES:  # the caches never settle: a defect, not the database's state
                    raise RuntimeError(f"report {parsed.report_id}: caches still stale after {_REFRESHES} refreshes")
            except (psycopg.Error, sa.exc.DBAPIError) as exc:
                state = getattr(exc, "sqlstate", None)
                if not (is_connection_failure(exc) or state in _RETRYABLE_STATES):
                    raise
                failures += 1
                self._after_failure(parsed, failures, exc)

    def _store_once(
        self, connection: psycopg.Connection[Any], parsed: ParsedReport, report: dict[str, Any], now: dt.datetime
    ) -> StoreOutcome:
        today = now.date()
        with connection.pipeline():
            connection.execute(WAIVER_LOCK, prepare=True)
            locked = connection.execute(LOCK_SUBJECT, report, prepare=True)
            state = connection.execute(STATE, report, prepare=True)
            inserted = connection.execute(INSERT_REPORT, report, prepare=True)
            previous_rows = connection.execute(PREVIOUS, report, prepare=True)
            row = locked.fetchone()
            revoked_at, waiver_version, policy_version = state.fetchone() or (None, 0, 0)
            if row is None or revoked_at is not None:
                connection.rollback()
                raise AgentRevoked(parsed.agent_id)
            subject = SubjectRow(*row)
            waivers = self._waivers(waiver_version, today)
            assigned = self._assigned(policy_version, subject.group)
            if waivers is None or assigned is None:
                connection.rollback()
                raise _Stale
            if inserted.fetchone() is None:  # a re-send: the host was seen, nothing else changes
                connection.commit()
                return StoreOutcome(duplicate=True)
            previous = {(r[0], r[1]): Previous(*r[2:]) for r in previous_rows.fetchall()}
            counted, refused = assigned.admit(parsed.results, now)
            plan = plan_results(
                subject,
                previous,
                counted,
                now=now,
                report_id=parsed.report_id,
                judge=judge_with(waivers, subject, today),
            )
            _write(connection, subject, plan)
            connection.commit()
        plan.outcome.not_counted = refused
        return plan.outcome

    def _waivers(self, version: int, today: dt.date) -> WaiverIndex | None:
        """The waivers in force at `version` (the one this transaction read); None when a reload found
        another version (a change committed meanwhile: the report is judged again from the start)."""
        cached = self.waivers.cached(today)
        if cached is None or cached[0] != version:
            with self._base.connect() as base, base.begin():
                cached = self.waivers.reload(base, today)
            if cached[0] != version:
                return None
        return cached[1]

    def _assigned(self, version: int, group: str) -> Assigned | None:
        cached = self.assignments.cached(group)
        if cached is None or cached[0] != version:
            with self._base.connect() as base, base.begin():
                cached = self.assignments.reload(base, group)
            if cached[0] != version:
                return None
        return cached[1]

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


def _write(connection: psycopg.Connection[Any], subject: SubjectRow, plan: Plan) -> None:
    """The plan's statements, queued in the pipeline (sent with the commit). Counter rows in key order,
    as every path takes them, so that two transactions cannot deadlock on them."""
    with connection.cursor() as cursor:
        if plan.rows:
            cursor.executemany(
                UPSERT_LATEST,
                [
                    (
                        r["subject_id"],
                        r["policy_id"],
                        r["check_id"],
                        r["status"],
                        r["waived_status"],
                        r["waiver_id"],
                        r["severity"],
                        r["title"],
                        r["reason"],
                        json_text(r["observed"]).decode(),
                        json_text(r["expectation"]).decode(),
                        r["policy_version"],
                        r["policy_hash"],
                        r["evaluated_at"],
                        r["since"],
                        r["report_id"],
                        r["digest"],
                    )  # fmt: skip
                    for r in plan.rows
                ],
            )
        if plan.frozen:
            cursor.executemany(
                FREEZE_LATEST, [(f["evaluated_at"], subject.id, f["policy_id"], f["check_id"]) for f in plan.frozen]
            )
        if plan.changes:
            closing = [(c.at, c.subject_id, c.policy_id, c.check_id) for c in plan.changes if c.old_status is not None]
            if closing:
                cursor.executemany(CLOSE_INTERVAL, closing)
            cursor.executemany(
                OPEN_INTERVAL,
                [
                    (
                        i["subject_id"],
                        i["policy_id"],
                        i["check_id"],
                        i["status"],
                        i["policy_hash"],
                        i["valid_from"],
                        i["report_id"],
                    )  # fmt: skip
                    for i in opened_intervals(plan.changes)
                ],
            )
            current, daily = change_deltas(plan.changes)
            counts = [(*key, n) for key, n in sorted(current.items()) if n]
            if counts:
                cursor.executemany(ADD_COUNT, counts)
            days = [(*key, n) for key, n in sorted(daily.items()) if n]
            if days:
                cursor.executemany(ADD_DAILY, days)
        if plan.mark is not None:
            cursor.execute(MARK, (plan.mark[0], plan.mark[1], subject.id), prepare=True)


def available(engine: Engine) -> bool:
    """Whether this path stores the reports: PostgreSQL (the app refuses to serve an older schema)."""
    return engine.dialect.name == "postgresql"
