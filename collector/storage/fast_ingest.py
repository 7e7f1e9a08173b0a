"""Storing agent reports on PostgreSQL: the store pipeline's statements, in two round trips per report.

What is written is decided once, in Python, by `plan_results` (collector/storage/ingest.py), the same for
SQLite, cloud runs and this path; `tests/collector/test_fast_ingest.py` stores the same reports on SQLite
and here and compares every table. What this module adds is the cost: its own plain psycopg connections
(no SQLAlchemy on the way, no ping or reset on checkout), statements prepared once per connection, and
psycopg's pipeline mode, so that a report is two round trips whatever it holds:

1. take the shared advisory lock and lock the subject; read the waivers' and policies' state versions
   and the subject's latest rows;
2. one statement writes the signed report (a known report_id, or an agent revoked meanwhile, makes the
   rest a no-op), what the plan says (changed latest rows, history, counters) and the subject row (seen,
   and its mark); then commit.

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
    created_on,
    plan_results,
)
from collector.storage.models import WAIVER_LOCK_KEY
from collector.storage.registry import AgentRevoked
from collector.storage.report_codec import encode
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

# The shared advisory lock first (in the join, so before the subject's row is locked), then the subject,
# by the agent's key alone (its revocation read in the value, not the condition): with `revoked_at IS
# NULL` in a condition, a plan cached for any agent may walk the index of agents not revoked, all of them.
# A revocation committed while this waited for the subject's lock (a revocation locks it too,
# history.retire_subject) is seen by WRITE, a later statement. Locked, not updated: the one update of the
# subject row (seen, and its mark) is WRITE's.
LOCK_SUBJECT = (
    "SELECT s.id, s.kind, s.ext_id, s.name, s.group_name, s.last_report_id, s.last_evaluated_at "
    f"FROM subjects s, (SELECT pg_advisory_xact_lock_shared({WAIVER_LOCK_KEY})) AS waiver_lock "
    "WHERE s.id = (SELECT CASE WHEN revoked_at IS NULL THEN subject_id END FROM agents WHERE agent_id = %(agent)s) "
    "FOR UPDATE OF s"
)
# The waivers' and policies' state versions (read after the advisory lock, so the waivers' cannot move
# until this transaction ends), then the subject's latest rows, by the subject alone (so that only the
# indexes that lead with it can be used), in a statement after the lock: it sees what a report stored
# meanwhile wrote. One row with no latest columns for a subject without results.
PREVIOUS = (
    "SELECT v.w, v.p, l.policy_id, l.check_id, l.status, l.waived_status, l.waiver_id, l.evaluated_at, l.since, "
    "l.digest, l.report_id FROM (SELECT coalesce((SELECT version FROM state_versions WHERE name = 'waivers'), 0) w, "
    "coalesce((SELECT version FROM state_versions WHERE name = 'policies'), 0) p) v "
    "LEFT JOIN latest_results l ON l.subject_id = (SELECT subject_id FROM agents WHERE agent_id = %(agent)s)"
)
# Everything the plan writes, in one statement (a data-modifying CTE runs whether or not it is read): the
# signed report first (a known report_id, or an agent revoked meanwhile, makes the rest a no-op: every
# other part joins it), then the rows, each kind as one JSON parameter (encoded in C, parsed in C).
# Counter rows in key order (COLLATE "C", as Python orders them on every other path), so that two
# transactions cannot deadlock on them.
WRITE_TEXT = """
WITH report AS (
    INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, created_on, result_count,
                         dropped, signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib)
    SELECT %(report_id)s, a.agent_id, a.subject_id, %(now)s, %(created_at)s, %(created_on)s, %(result_count)s,
           %(dropped)s, %(method)s, %(path)s, %(timestamp)s, %(sha256)s, %(signature)s, %(body)s
      FROM agents a WHERE a.agent_id = %(agent)s AND a.revoked_at IS NULL
    ON CONFLICT (report_id, created_on) DO NOTHING
    RETURNING 1
),
latest AS (
    INSERT INTO latest_results AS l
    SELECT r.* FROM report, json_populate_recordset(NULL::latest_results, %(rows)s) r
     ORDER BY r.policy_id COLLATE "C", r.check_id COLLATE "C"
    ON CONFLICT (subject_id, policy_id, check_id) DO UPDATE SET
           status = excluded.status, waived_status = excluded.waived_status, waiver_id = excluded.waiver_id,
           severity = excluded.severity, title = excluded.title, reason = excluded.reason,
           observed = excluded.observed, expectation = excluded.expectation,
           policy_version = excluded.policy_version, policy_hash = excluded.policy_hash,
           evaluated_at = excluded.evaluated_at, since = excluded.since, report_id = excluded.report_id,
           digest = excluded.digest
),
frozen AS (
    UPDATE latest_results l SET evaluated_at = f.evaluated_at, digest = NULL
      FROM report, json_populate_recordset(NULL::latest_results, %(frozen)s) f
     WHERE l.subject_id = %(subject)s AND l.policy_id = f.policy_id AND l.check_id = f.check_id
),
closed AS (
    UPDATE result_intervals i SET valid_to = c.valid_to
      FROM report, json_populate_recordset(NULL::result_intervals, %(closing)s) c
     WHERE i.subject_id = %(subject)s AND i.policy_id = c.policy_id AND i.check_id = c.check_id
       AND i.valid_to IS NULL
),
opened AS (
    INSERT INTO result_intervals (subject_id, policy_id, check_id, status, policy_hash, valid_from, report_id)
    SELECT o.subject_id, o.policy_id, o.check_id, o.status, o.policy_hash, o.valid_from, o.report_id
      FROM report, json_populate_recordset(NULL::result_intervals, %(opened)s) o
),
counted AS (
    INSERT INTO status_counts AS sc
    SELECT n.* FROM report, json_populate_recordset(NULL::status_counts, %(counts)s) n
     ORDER BY n.shard, n.group_name COLLATE "C", n.policy_id COLLATE "C", n.check_id COLLATE "C",
              n.status COLLATE "C"
    ON CONFLICT (shard, group_name, policy_id, check_id, status) DO UPDATE SET count = sc.count + excluded.count
),
daily AS (
    INSERT INTO daily_changes AS dc
    SELECT d.* FROM report, json_populate_recordset(NULL::daily_changes, %(daily)s) d
     ORDER BY d.day, d.shard, d.group_name COLLATE "C", d.policy_id COLLATE "C", d.check_id COLLATE "C",
              d.status COLLATE "C"
    ON CONFLICT (day, shard, group_name, policy_id, check_id, status) DO UPDATE SET delta = dc.delta + excluded.delta
),
marked AS (
    UPDATE subjects SET last_seen = %(now)s, last_report_at = %(now)s,
           last_report_id = coalesce((SELECT %(report_id)s FROM report), last_report_id),
           last_evaluated_at = CASE WHEN EXISTS (SELECT FROM report) THEN %(mark_at)s ELSE last_evaluated_at END
     WHERE id = %(subject)s
)
SELECT EXISTS (SELECT FROM report)
"""
# Whitespace collapsed: psycopg caches the conversion of statements up to 4 kB only.
WRITE = " ".join(WRITE_TEXT.split())
# A report without created_at: its re-sends share no created_on (collector/storage/ingest.py), so its id is
# looked up in every partition. Only such a report runs this: a statement that names every partition pays
# for them (each locked and opened) on every call, even where it does not read them.
_CONFLICT = "ON CONFLICT (report_id, created_on) DO NOTHING"
assert WRITE.count(_CONFLICT) == 1, "WRITE_UNDATED is made from WRITE's conflict clause"
WRITE_UNDATED = WRITE.replace(
    _CONFLICT, "AND NOT EXISTS (SELECT FROM reports WHERE report_id = %(report_id)s::varchar) " + _CONFLICT
)
REVOKED = "SELECT revoked_at IS NOT NULL FROM agents WHERE agent_id = %(agent)s"


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
            "created_on": created_on(parsed, now),
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
                    raise RuntimeError(
                        f"report {parsed.report_id}: caches still stale after {_REFRESHES} refreshes"
                    ) from None
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
            # First round trip: lock, subject, state versions, latest rows.
            locked = connection.execute(LOCK_SUBJECT, report, prepare=True)
            previous_rows = connection.execute(PREVIOUS, report, prepare=True)
            row = locked.fetchone()
            if row is None:  # no such agent, or revoked
                connection.rollback()
                raise AgentRevoked(parsed.agent_id)
            subject = SubjectRow(*row)
            found = previous_rows.fetchall()
            waivers = self._waivers(found[0][0], today)
            assigned = self._assigned(found[0][1], subject.group)
            if waivers is None or assigned is None:
                connection.rollback()
                raise _Stale
            previous = {(r[2], r[3]): Previous(*r[4:]) for r in found if r[2] is not None}
            counted, refused = assigned.admit(parsed.results, now)
            plan = plan_results(
                subject,
                previous,
                counted,
                now=now,
                report_id=parsed.report_id,
                waivers=waivers,
            )
            # Second: the writes and the commit.
            statement = WRITE if parsed.created_at else WRITE_UNDATED
            written = connection.execute(statement, _write_params(report, subject, plan), prepare=True)
            connection.commit()
            stored = written.fetchone()
        if stored and stored[0]:
            plan.outcome.not_counted = refused
            return plan.outcome
        # A re-send (the host was seen, nothing else changed), or an agent revoked while this waited for
        # the subject's lock (the host was seen at that instant, nothing else was written).
        revoked = connection.execute(REVOKED, report, prepare=True).fetchone()
        connection.rollback()
        if revoked is None or revoked[0]:
            raise AgentRevoked(parsed.agent_id)
        return StoreOutcome(duplicate=True)

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


def _write_params(report: dict[str, Any], subject: SubjectRow, plan: Plan) -> dict[str, Any]:
    """WRITE's parameters: the report's, and each kind of row as one JSON text (msgspec: the observed
    facts the agent sent go in as they came, collector/storage/report_codec.py)."""
    current, daily = change_deltas(plan.changes)
    return {
        **report,
        "subject": subject.id,
        "mark_at": None if plan.mark is None else plan.mark[1],
        "rows": encode(plan.rows).decode(),
        "frozen": encode(plan.frozen).decode(),
        "closing": encode(
            [{"policy_id": c.policy_id, "check_id": c.check_id, "valid_to": c.at} for c in plan.changes if c.old_status]
        ).decode(),
        "opened": encode(opened_intervals(plan.changes)).decode(),
        "counts": encode(
            [
                {"shard": k[0], "group_name": k[1], "policy_id": k[2], "check_id": k[3], "status": k[4], "count": n}
                for k, n in current.items()
                if n
            ]
        ).decode(),
        "daily": encode(
            [
                {
                    "day": k[0],
                    "shard": k[1],
                    "group_name": k[2],
                    "policy_id": k[3],
                    "check_id": k[4],
                    "status": k[5],
                    "delta": n,
                }  # fmt: skip
                for k, n in daily.items()
                if n
            ]
        ).decode(),
    }


def available(engine: Engine) -> bool:
    """Whether this path stores the reports: PostgreSQL (the app refuses to serve an older schema)."""
    return engine.dialect.name == "postgresql"
