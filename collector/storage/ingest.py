"""Storing results: the one store pipeline, one transaction per report, idempotent by report id.

What one report costs, whatever its size: lock the subject row (so two reports of one subject are stored
one after the other, on any replica), insert the raw report (a unique report_id turns a re-sent report
into a no-op), read the subject's latest rows, and write what `plan_results` decides: only the latest
rows of results that changed (status, waiver or digest, collector/storage/digest.py), history and
counters only for statuses that changed (collector/storage/history.py), and always the subject's mark of
its last report, which says when the results it found unchanged were evaluated. `plan_results` is the
one place where that is decided; this module runs it in a SQLAlchemy transaction (SQLite, cloud runs),
collector/storage/fast_ingest.py with PostgreSQL statements of its own.

The collector is the authority on waivers: a result is stored as `waived` when a waiver approved here
covers it, and a `waived` result whose waiver is no longer in force here is stored with its own status.
It is the authority on checks too: only results judged against a policy assigned to the agent's group
are stored, with that policy's title, severity and version (collector/storage/assignments.py); the rest
stay in the raw report.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.policy.model import Waiver
from checks.results import Severity, Status, Subject, SubjectKind
from checks.wire import PROTOCOL
from collector.storage.assignments import AssignmentSource
from collector.storage.bulk import insert_rows, update_rows, upsert
from collector.storage.digest import result_digest
from collector.storage.history import RETIRED, Change, record_changes
from collector.storage.models import agents, latest_results, reports, subjects
from collector.storage.registry import AgentRevoked

MAX_RESULTS_PER_REPORT = 5000
_REPORT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_STATUSES = {s.value for s in Status}
_SEVERITIES = {s.value for s in Severity}
_UNDERLYING = {Status.FAIL.value, Status.ERROR.value}
_WAIVED = Status.WAIVED.value
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReportError(Exception):
    """A report that cannot be stored as sent; `code` is stable, the message says what and where."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)  # made 40 times per report
class IncomingResult:
    policy_id: str
    check_id: str
    status: str
    waived_status: str | None
    waiver_id: str | None
    severity: str
    title: str
    reason: str
    observed: Any
    expectation: Any
    policy_version: str
    policy_hash: str
    evaluated_at: dt.datetime | None
    frameworks: dict[str, Any] = field(default_factory=dict)
    weight: float | None = None


@dataclass
class ParsedReport:
    report_id: str
    agent_id: str
    created_at: str
    dropped: int
    host: dict[str, Any]
    results: list[IncomingResult]


@dataclass(frozen=True)
class SignedEvidence:
    """What is needed to verify the agent's signature on a stored report again, later and offline."""

    method: str
    path: str
    timestamp: int
    content_sha256: str
    signature: str


@dataclass
class StoreOutcome:
    duplicate: bool
    stored: int = 0
    changed: int = 0
    superseded: int = 0
    rewritten: int = 0  # latest rows written: new or changed results (the others were found unchanged)
    # Results kept only in the raw report, by reason (collector/storage/assignments.py).
    not_counted: dict[str, int] = field(default_factory=dict)


# --- parsing -------------------------------------------------------------------------------------------


def _text(value: Any, where: str, name: str, *, limit: int = 255, required: bool = True) -> str:
    """A string field; the message (built only on error: this runs for every field of every result)
    names `where`.`name`."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ReportError("bad_report", f"{where}.{name} must be a non-empty string")
    if len(value) > limit:
        raise ReportError("bad_report", f"{where}.{name} is longer than {limit} characters")
    return value


def parse_time(value: Any, where: str) -> dt.datetime | None:
    """An ISO 8601 time as naive UTC; empty means unknown."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ReportError("bad_report", f"{where} must be an ISO 8601 time")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ReportError("bad_report", f"{where} is not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is after the last representable instant
            raise ReportError("bad_report", f"{where} is out of range in UTC: {value[:40]!r}") from None
    return parsed.replace(microsecond=0)


def parse_result(data: Any, where: str) -> IncomingResult:
    if not isinstance(data, dict):
        raise ReportError("bad_report", f"{where} must be an object")
    policy = data.get("policy")
    if not isinstance(policy, dict):
        raise ReportError("bad_report", f"{where}.policy must be an object with id, version and hash")
    # Membership is tested on strings only: a list or an object here is not hashable.
    status = data.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        raise ReportError("bad_report", f"{where}.status must be one of {', '.join(sorted(_STATUSES))}")
    severity = data.get("severity")
    if not isinstance(severity, str) or severity not in _SEVERITIES:
        raise ReportError("bad_report", f"{where}.severity must be one of {', '.join(sorted(_SEVERITIES))}")
    waived_status = data.get("waived_status")
    if status == _WAIVED:
        if not isinstance(waived_status, str) or waived_status not in _UNDERLYING:
            raise ReportError("bad_report", f"{where}.waived_status must be fail or error for a waived result")
    else:
        waived_status = None
    frameworks = data.get("frameworks") or {}
    if not isinstance(frameworks, dict):
        raise ReportError("bad_report", f"{where}.frameworks must be an object")
    weight = data.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)):
        raise ReportError("bad_report", f"{where}.weight must be a number")
    policy_hash = policy.get("hash")
    if not isinstance(policy_hash, str) or not _SHA256.fullmatch(policy_hash):
        raise ReportError("bad_report", f"{where}.policy.hash must be a SHA-256 in hex")
    observed = data.get("observed")
    if observed is not None and not isinstance(observed, dict | list):
        raise ReportError("bad_report", f"{where}.observed must be an object")
    evaluated_at = data.get("evaluated_at")
    return IncomingResult(
        policy_id=_text(policy.get("id"), where, "policy.id", limit=100),
        check_id=_text(data.get("check_id"), where, "check_id", limit=200),
        status=status,
        waived_status=waived_status,
        waiver_id=_text(data.get("waiver_id"), where, "waiver_id", limit=100, required=False) or None,
        severity=severity,
        title=_text(data.get("title"), where, "title", limit=2000, required=False),
        reason=_text(data.get("reason"), where, "reason", limit=20000, required=False),
        observed=observed,
        expectation=data.get("expectation"),
        policy_version=_text(policy.get("version"), where, "policy.version", limit=50),
        policy_hash=policy_hash,
        evaluated_at=parse_time(evaluated_at, f"{where}.evaluated_at") if evaluated_at else None,
        frameworks=frameworks,
        weight=None if weight is None else float(weight),
    )


def parse_report(data: Any, agent_id: str) -> ParsedReport:
    """Check a report body (docs/protocol.md) before anything is stored."""
    if not isinstance(data, dict):
        raise ReportError("bad_report", "a report is a JSON object")
    if data.get("protocol") != PROTOCOL:
        raise ReportError("bad_report", f"protocol must be {PROTOCOL!r}")
    report_id = data.get("report_id")
    if not isinstance(report_id, str) or not _REPORT_ID.match(report_id):
        raise ReportError("bad_report", "report_id must be 8 to 64 letters, digits or ._:- (a UUID)")
    if data.get("agent_id") != agent_id:
        raise ReportError("agent_mismatch", "the report's agent_id is not the agent that signed the request")
    dropped = data.get("dropped", 0)
    if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
        raise ReportError("bad_report", "dropped must be a whole number of results, 0 or more")
    host = data.get("host") or {}
    if not isinstance(host, dict):
        raise ReportError("bad_report", "host must be an object")
    results = data.get("results")
    if not isinstance(results, list):
        raise ReportError("bad_report", "results must be a list")
    if len(results) > MAX_RESULTS_PER_REPORT:
        raise ReportError("bad_report", f"a report holds at most {MAX_RESULTS_PER_REPORT} results")
    created_at = data.get("created_at") or ""
    parse_time(created_at, "created_at")
    return ParsedReport(
        report_id=report_id,
        agent_id=agent_id,
        created_at=str(created_at)[:40],
        dropped=dropped,
        host=host,
        results=[parse_result(item, f"results[{index}]") for index, item in enumerate(results)],
    )


# --- waivers in force ----------------------------------------------------------------------------------


class WaiverIndex:
    """The waivers approved at the collector and not expired, by check id."""

    def __init__(self, in_force: Sequence[Waiver] = ()) -> None:
        self._by_check: dict[str, list[Waiver]] = {}
        for waiver in in_force:
            self._by_check.setdefault(waiver.check, []).append(waiver)

    def has_check(self, check_id: str) -> bool:
        """Whether any waiver here names this check (if not, `find` finds nothing for it)."""
        return check_id in self._by_check

    def find(
        self, policy_id: str, check_id: str, subject: Subject, groups: Sequence[str], today: dt.date
    ) -> str | None:
        for waiver in self._by_check.get(check_id, ()):
            if (
                waiver.applies_to(policy_id, check_id)
                and not waiver.expired(today)
                and waiver.scope.covers(subject, tuple(groups))
            ):
                return waiver.id
        return None


# (connection, today) -> the waivers in force; collector.storage.waivers.WaiverCache.current is one.
WaiverSource = Callable[[Connection, dt.date], WaiverIndex]


def judged_status(
    result: IncomingResult, waivers: WaiverIndex, subject: Subject, group: str, today: dt.date
) -> tuple[str, str | None, str | None]:
    """(status, waived_status, waiver_id) as the collector records it."""
    underlying = result.waived_status if result.status == Status.WAIVED.value else result.status
    assert underlying is not None
    if underlying in _UNDERLYING:
        waiver_id = waivers.find(result.policy_id, result.check_id, subject, [group], today)
        if waiver_id is not None:
            return Status.WAIVED.value, underlying, waiver_id
    return underlying, None, None


# --- storing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectRow:
    id: int
    kind: str
    ext_id: str
    name: str
    group: str
    # The mark of the last report stored for the subject, as it was before this one (see `plan_results`).
    last_report_id: str | None = None
    last_evaluated_at: dt.datetime | None = None


# A subject's columns in SubjectRow's order, for SubjectRow(*row).
SUBJECT_ROW_COLUMNS = (
    subjects.c.id,
    subjects.c.kind,
    subjects.c.ext_id,
    subjects.c.name,
    subjects.c.group_name,
    subjects.c.last_report_id,
    subjects.c.last_evaluated_at,
)


class Previous(NamedTuple):
    """What is needed of a latest row to tell whether an incoming result changes it (a tuple: 40 are
    made per report)."""

    status: str
    waived_status: str | None
    waiver_id: str | None
    evaluated_at: dt.datetime
    since: dt.datetime
    digest: int | None
    report_id: str | None


# The columns of latest_results that a Previous is read from, after (policy_id, check_id).
PREVIOUS_COLUMNS = ("status", "waived_status", "waiver_id", "evaluated_at", "since", "digest", "report_id")


def confirmed_by_last_report(digest: int | None, report_id: str | None, last_report_id: str | None) -> bool:
    """Whether a latest row was found unchanged by its subject's last report (so was evaluated at that
    report's `last_evaluated_at`, not at its own `evaluated_at`). A row written by the last report has
    that report's id; a row the last report did not confirm has no digest (`plan_results` clears it)."""
    return digest is not None and report_id is not None and report_id != last_report_id


def evaluated_at_sql(latest: Any, subject: Any) -> Any:
    """`confirmed_by_last_report` in SQL: when a latest row's result was last evaluated (every output
    that shows or compares it uses this, never the column alone)."""
    return sa.case(
        (
            sa.and_(
                latest.c.digest.is_not(None),
                latest.c.report_id.is_not(None),
                latest.c.report_id != subject.c.last_report_id,
                subject.c.last_evaluated_at.is_not(None),
            ),
            subject.c.last_evaluated_at,
        ),
        else_=latest.c.evaluated_at,
    )


def lock_agent_subject(connection: Connection, agent_id: str, now: dt.datetime) -> SubjectRow:
    """Mark the agent's subject seen and lock it for this transaction; AgentRevoked when it may not report."""
    row = connection.execute(
        subjects.update()
        .where(
            subjects.c.id
            == sa.select(agents.c.subject_id)
            .where(agents.c.agent_id == agent_id, agents.c.revoked_at.is_(None))
            .scalar_subquery()
        )
        .values(last_seen=now, last_report_at=now)
        .returning(*SUBJECT_ROW_COLUMNS)
    ).first()
    if row is None:
        raise AgentRevoked(agent_id)
    if connection.dialect.name == "postgresql":
        # Read again now that the subject is locked: a revocation committed while this waited for the lock
        # (it locks the subject too, history.retire_subject) was not in the statement's snapshot.
        # SQLite runs one writer at a time, so nothing can have changed.
        revoked = connection.execute(sa.select(agents.c.revoked_at).where(agents.c.agent_id == agent_id)).scalar()
        if revoked is not None:
            raise AgentRevoked(agent_id)
    return SubjectRow(*row)


def created_on(parsed: ParsedReport, now: dt.datetime) -> dt.date:
    """The report's partition key (collector/storage/partitions.py): the day (UTC) the agent made it, the
    same on every re-send of it; or, when it did not say, the day it was received, which a re-send on
    another day does not share: `insert_report` then looks the report_id up in every partition."""
    return (parse_time(parsed.created_at, "created_at") or now).date()


def insert_report(
    connection: Connection,
    parsed: ParsedReport,
    subject: SubjectRow,
    body: bytes,
    evidence: SignedEvidence,
    now: dt.datetime,
) -> bool:
    """Keep the signed report; False when this report_id is already stored (a re-send)."""
    if (
        not parsed.created_at
        and connection.execute(sa.select(reports.c.id).where(reports.c.report_id == parsed.report_id).limit(1)).first()
    ):
        return False
    statement = upsert(connection, reports).values(
        report_id=parsed.report_id,
        agent_id=parsed.agent_id,
        subject_id=subject.id,
        received_at=now,
        created_at=parsed.created_at,
        created_on=created_on(parsed, now),
        result_count=len(parsed.results),
        dropped=parsed.dropped,
        signed_method=evidence.method,
        signed_path=evidence.path,
        signed_timestamp=evidence.timestamp,
        content_sha256=evidence.content_sha256,
        signature=evidence.signature,
        body_zlib=zlib.compress(body, 1),
    )
    inserted = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["report_id", "created_on"]).returning(reports.c.id)
    ).first()
    return inserted is not None


def newest_results(results: Sequence[IncomingResult], now: dt.datetime) -> list[IncomingResult]:
    """One result per (policy, check): the last evaluated, the later one in the report on a tie."""
    newest: dict[tuple[str, str], IncomingResult] = {}
    for result in results:
        key = (result.policy_id, result.check_id)
        seen = newest.get(key)
        if seen is None or (result.evaluated_at or now) >= (seen.evaluated_at or now):
            newest[key] = result
    return list(newest.values())


@dataclass
class Plan:
    """What storing a subject's results writes (`plan_results`); each database's statements carry it out."""

    outcome: StoreOutcome
    rows: list[dict[str, Any]]  # latest rows written (new or changed), in key order
    frozen: list[dict[str, Any]]  # latest rows the report did not confirm: their own time, digest cleared
    changes: list[Change]  # status changes: history and counters
    mark: tuple[str, dt.datetime | None] | None  # the subject's new last report (id, evaluated at)


def plan_results(
    subject: SubjectRow,
    previous: dict[tuple[str, str], Previous],
    results: Sequence[IncomingResult],
    *,
    now: dt.datetime,
    report_id: str | None,
    waivers: WaiverIndex,
) -> Plan:
    """Decide what storing these results of one subject writes: the one place where that is decided.

    A result whose status, waiver and digest (collector/storage/digest.py) are those of its latest row,
    and whose evaluation time is the report's, changes nothing: its row is not written, and the
    subject's mark (last report id and time, written by the caller) says when it was evaluated. Any other
    result rewrites its row; a status change also writes history and counters. Results of a cloud run
    (no report id) always rewrite their rows: a run may leave checks out, and it keeps no mark.
    A row the report did not confirm (a check it left out, or an older run arriving late) keeps its own
    evaluation time: its digest is cleared and its time written, so the new mark does not apply to it.

    This runs for every result of every report: the loop is written for speed (no call per result that
    is not needed: waivers are asked only about checks that some waiver names).
    """
    outcome = StoreOutcome(duplicate=False)
    newest = newest_results(results, now)
    times = [now if r.evaluated_at is None or r.evaluated_at > now else r.evaluated_at for r in newest]
    mark_at = max(times, default=None)
    confirming = report_id is not None
    last_id, last_at = subject.last_report_id, subject.last_evaluated_at
    who = Subject(SubjectKind(subject.kind), subject.ext_id, subject.name)
    today = now.date()
    rows: list[dict[str, Any]] = []
    changes: list[Change] = []
    kept = seen = 0  # results stored (written or confirmed); results with a latest row
    late: list[tuple[str, str]] = []
    for result, evaluated_at in zip(newest, times, strict=True):
        key = (result.policy_id, result.check_id)
        before = previous.get(key)
        if before is not None:
            seen += 1
            before_at = before.evaluated_at
            if last_at is not None and confirmed_by_last_report(before.digest, before.report_id, last_id):
                before_at = last_at
            if evaluated_at < before_at:
                late.append(key)  # an older run arriving late: kept in the raw report only
                continue
            if before.status == RETIRED:
                before = None  # counted afresh, as a first result (collector/storage/history.py)
        kept += 1
        if waivers.has_check(result.check_id):
            status, waived_status, waiver_id = judged_status(result, waivers, who, subject.group, today)
        else:  # what judged_status gives when no waiver names the check
            status = result.waived_status or result.status if result.status == _WAIVED else result.status
            waived_status = waiver_id = None
        digest = result_digest(result.policy_hash, result.observed, result.expectation, result.reason)
        if before is not None:
            if (
                confirming
                and evaluated_at == mark_at
                and before.digest == digest
                and before.status == status
                and before.waived_status == waived_status
                and before.waiver_id == waiver_id
            ):
                continue
            since = before.since
            if before.status != status:
                since = max(evaluated_at, before.since)
        else:
            since = evaluated_at
        if before is None or before.status != status:
            changes.append(
                Change(
                    subject_id=subject.id,
                    group=subject.group,
                    policy_id=result.policy_id,
                    check_id=result.check_id,
                    old_status=None if before is None else before.status,
                    new_status=status,
                    at=since,
                    policy_hash=result.policy_hash,
                    report_id=report_id,
                )
            )
        rows.append(
            {
                "subject_id": subject.id,
                "policy_id": result.policy_id,
                "check_id": result.check_id,
                "status": status,
                "waived_status": waived_status,
                "waiver_id": waiver_id,
                "severity": result.severity,
                "title": result.title,
                "reason": result.reason,
                "observed": result.observed,
                "expectation": result.expectation,
                "policy_version": result.policy_version,
                "policy_hash": result.policy_hash,
                "evaluated_at": evaluated_at,
                "since": since,
                "report_id": report_id,
                "digest": digest,
            }
        )
    frozen: list[dict[str, Any]] = []
    if confirming and seen - len(late) < len(previous):  # some latest rows this report did not confirm
        kept_keys = {(r.policy_id, r.check_id) for r in newest}.difference(late)
        for key, row in sorted(previous.items()):
            if row.digest is not None and key not in kept_keys:
                at = row.evaluated_at
                if last_at is not None and confirmed_by_last_report(row.digest, row.report_id, last_id):
                    at = last_at
                frozen.append({"policy_id": key[0], "check_id": key[1], "evaluated_at": at, "digest": None})
    rows.sort(key=_row_key)  # key order, as every path writes rows (PostgreSQL sorts them again)
    outcome.stored = kept
    outcome.superseded = len(late)
    outcome.changed = len(changes)
    outcome.rewritten = len(rows)
    return Plan(outcome, rows, frozen, changes, (report_id, mark_at) if report_id is not None else None)


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["policy_id"], row["check_id"])


def store_results(
    connection: Connection,
    subject: SubjectRow,
    results: Sequence[IncomingResult],
    *,
    now: dt.datetime,
    report_id: str | None,
    waivers: WaiverSource,
) -> StoreOutcome:
    """Update latest state, history and counters for one subject, and its mark when the results come
    from a report (`report_id`). The caller holds the subject's lock and has checked the results count
    (for an agent: collector/storage/assignments.py).

    The waivers are looked up after the latest rows are locked, so that a waiver approved meanwhile on
    another replica is either seen here or re-applied by that replica after this transaction commits.
    """
    if not results and report_id is None:
        return StoreOutcome(duplicate=False)
    previous = {
        (row[0], row[1]): Previous(*row[2:])
        for row in connection.execute(
            sa.select(
                latest_results.c.policy_id, latest_results.c.check_id, *(latest_results.c[n] for n in PREVIOUS_COLUMNS)
            )
            .where(latest_results.c.subject_id == subject.id)
            .with_for_update()
        )
    }
    today = now.date()
    plan = plan_results(
        subject,
        previous,
        results,
        now=now,
        report_id=report_id,
        waivers=waivers(connection, today),
    )
    insert_rows(connection, latest_results, plan.rows, key=LATEST_KEY, update=_latest_update)
    update_rows(
        connection,
        latest_results,
        plan.frozen,
        match=("policy_id", "check_id"),
        values=("evaluated_at", "digest"),
        same={"subject_id": subject.id},
    )
    record_changes(connection, plan.changes)
    if plan.mark is not None:
        connection.execute(
            subjects.update()
            .where(subjects.c.id == subject.id)
            .values(last_report_id=plan.mark[0], last_evaluated_at=plan.mark[1])
        )
    return plan.outcome


LATEST_KEY = ("subject_id", "policy_id", "check_id")
_LATEST_VALUES = tuple(c.name for c in latest_results.columns if c.name not in LATEST_KEY)


def _latest_update(excluded: Any) -> dict[str, Any]:
    return {name: excluded[name] for name in _LATEST_VALUES}


def store_agent_report(
    connection: Connection,
    parsed: ParsedReport,
    body: bytes,
    evidence: SignedEvidence,
    *,
    now: dt.datetime,
    waivers: WaiverSource,
    assignments: AssignmentSource,
) -> StoreOutcome:
    """One agent report, in the caller's transaction. Raises AgentRevoked (nothing must be committed).

    The whole report is kept as signed; only the results judged against what is assigned to the agent's
    group are stored as results (the others are counted, by reason, in the outcome)."""
    subject = lock_agent_subject(connection, parsed.agent_id, now)
    if not insert_report(connection, parsed, subject, body, evidence, now):
        return StoreOutcome(duplicate=True)
    counted, refused = assignments(connection, subject.group).admit(parsed.results, now)
    outcome = store_results(connection, subject, counted, now=now, report_id=parsed.report_id, waivers=waivers)
    outcome.not_counted = refused
    return outcome
