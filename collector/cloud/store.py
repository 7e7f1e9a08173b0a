"""Storing a cloud run where endpoint results go: one subject per tenant and per cloud resource.

Results pass through the same parser and `store_results` as an agent's report, so latest state, history
intervals, counters and the collector's waivers treat them alike; what each check is comes from the
collector's own cloud policies. A cloud run has no signed report to keep: `report_id` is empty.

What could not be observed does not replace what is known (the run's `coverage`):
- a run that could not sign in stores no result at all;
- an error that only says a check, or one subscription's listing, could not be observed is stored only
  when nothing else is known of that check there; otherwise the last known results stand (and the
  summary shows them as stale once older than `cloud.stale_after`);
- a subject that a complete, successful listing no longer has (a storage account deleted, a subscription
  gone, the error result of a subscription that is readable again) is retired from then on, its history
  kept (collector/storage/history.py).
Every run is recorded in `cloud_runs`: ok, partial or failed, why, and since when it has not been ok.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.results import Result, Status, Subject, SubjectKind
from collector.cloud.run import OK, CloudRun, subscription_of_listing
from collector.storage import observations
from collector.storage.history import RETIRED, Retirement, retire, upsert
from collector.storage.ingest import SubjectRow, WaiverSource, parse_result, parse_time, store_results
from collector.storage.models import cloud_runs, latest_results, subjects
from collector.storage.policies import write_catalog

CLOUD_GROUP = "cloud"  # the group cloud subjects belong to (waivers may scope by it)
MAX_EXT_ID = 200  # subjects.ext_id


def subject_key(subject: Subject) -> str:
    """The stored id: the resource id itself, or for the rare ARM id longer than the column, a stable
    shortened form that keeps its start and a hash of the whole."""
    if len(subject.id) <= MAX_EXT_ID:
        return subject.id
    digest = hashlib.sha256(subject.id.encode()).hexdigest()[:24]
    return f"{subject.id[: MAX_EXT_ID - 25]}~{digest}"


def lock_cloud_subject(connection: Connection, subject: Subject, now: dt.datetime) -> SubjectRow:
    """Create or update the subject row, marking it seen; the upsert holds its lock for the transaction."""
    statement = upsert(connection, subjects).values(
        kind=subject.kind.value,
        ext_id=subject_key(subject),
        name=subject.name[:255],
        group_name=CLOUD_GROUP,
        first_seen=now,
        last_seen=now,
        last_report_at=now,
    )
    row = connection.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "ext_id"],
            set_={"name": statement.excluded.name, "last_seen": now, "last_report_at": now},
        ).returning(subjects.c.id, subjects.c.kind, subjects.c.ext_id, subjects.c.name, subjects.c.group_name)
    ).one()
    return SubjectRow(row.id, row.kind, row.ext_id, row.name, row.group_name)


def group_by_subject(results: Sequence[Result]) -> dict[Subject, list[Result]]:
    grouped: dict[Subject, list[Result]] = {}
    for result in results:
        assert result.subject is not None
        grouped.setdefault(result.subject, []).append(result)
    return grouped


@dataclass
class Known:
    """A latest result of a cloud subject that still counts."""

    subject_id: int
    ext_id: str
    group: str
    status: str


@dataclass
class StoredRun:
    stored: int = 0  # results stored
    retired: int = 0  # results of subjects a complete listing no longer has
    standing: int = 0  # failures not stored because a verdict is known: the last known results stand
    record: dict[str, Any] | None = None  # the cloud_runs row


CLOUD_KINDS = (SubjectKind.TENANT.value, SubjectKind.CLOUD_RESOURCE.value)


def known_results(connection: Connection) -> dict[tuple[str, str], list[Known]]:
    """The counted latest results of every cloud subject, by (policy, check)."""
    rows = connection.execute(
        sa.select(
            latest_results.c.subject_id,
            latest_results.c.policy_id,
            latest_results.c.check_id,
            latest_results.c.status,
            subjects.c.ext_id,
            subjects.c.group_name,
        )
        .join(subjects, subjects.c.id == latest_results.c.subject_id)
        .where(subjects.c.kind.in_(CLOUD_KINDS), latest_results.c.status != RETIRED)
    )
    known: dict[tuple[str, str], list[Known]] = defaultdict(list)
    for row in rows:
        known[(row.policy_id, row.check_id)].append(Known(row.subject_id, row.ext_id, row.group_name, row.status))
    return known


def under(ext_id: str, subscription: str) -> bool:
    """Whether a stored subject is the subscription or one of its resources."""
    prefix = f"/subscriptions/{subscription}".lower()
    lowered = ext_id.lower()
    return lowered == prefix or lowered.startswith(prefix + "/")


def store_cloud_run(connection: Connection, run: CloudRun, *, now: dt.datetime, waivers: WaiverSource) -> StoredRun:
    """Store the run in the caller's transaction (see the module's docstring)."""
    outcome = StoredRun()
    if not run.sign_in_error:
        for policy in run.policies:  # the collector's own policies say what their checks are
            write_catalog(connection, policy, now)
        known = known_results(connection)
        kept, retiring = _plan(run, known, outcome, now)
        for subject, results in sorted(group_by_subject(kept).items(), key=lambda item: item[0].id):
            row = lock_cloud_subject(connection, subject, now)
            incoming = [parse_result(r.to_dict(), f"cloud result {r.check_id} on {subject.id}") for r in results]
            outcome.stored += store_results(connection, row, incoming, now=now, report_id=None, waivers=waivers).stored
            if row.kind == "tenant":  # no signed report keeps these facts: the day's are kept for the briefing
                observations.record(connection, row.id, incoming, now)
        if retiring:
            ids = sorted({r.subject_id for r in retiring})
            connection.execute(sa.select(subjects.c.id).where(subjects.c.id.in_(ids)).with_for_update()).all()
            retire(connection, retiring)
            outcome.retired = len(retiring)
    outcome.record = record_run(connection, run, outcome, now)
    return outcome


def _plan(
    run: CloudRun, known: dict[tuple[str, str], list[Known]], outcome: StoredRun, now: dt.datetime
) -> tuple[list[Result], list[Retirement]]:
    """(the results to store, the known results to retire)."""
    by_check: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for result in run.results:
        by_check[(result.policy_id, result.check_id)].append(result)
    kept: list[Result] = []
    retiring: list[Retirement] = []
    for key in by_check.keys() - run.coverage.keys():
        kept.extend(by_check[key])  # what the run could see of this check is not known: store, retire nothing
    for key, coverage in run.coverage.items():
        results, standing = by_check.get(key, []), known.get(key, [])
        verdicts = [k for k in standing if k.status != Status.ERROR.value]
        for result in results:
            if coverage.is_failure(result):
                subscription = None if coverage.unobserved else subscription_of_listing(result)
                if any(subscription is None or under(k.ext_id, subscription) for k in verdicts):
                    outcome.standing += 1  # what is known stands; the run's record says what failed
                    continue
            kept.append(result)
        if coverage.unobserved is not None:
            continue  # nothing was listed: nothing can be known to be gone
        present = {subject_key(r.subject) for r in results if r.subject is not None}
        for k in standing:
            if k.ext_id in present or any(under(k.ext_id, sub) for sub in coverage.failed_subscriptions):
                continue
            retiring.append(Retirement(k.subject_id, k.group, key[0], key[1], k.status, now))
    return kept, retiring


def record_run(connection: Connection, run: CloudRun, outcome: StoredRun, now: dt.datetime) -> dict[str, Any]:
    """Add the run to `cloud_runs`, carrying forward since when the tenant has not been fully observed."""
    tenant = run.tenant.id[:100]
    previous = connection.execute(
        sa.select(cloud_runs.c.status, cloud_runs.c.failing_since, cloud_runs.c.last_success_at)
        .where(cloud_runs.c.tenant_id == tenant)
        .order_by(cloud_runs.c.id.desc())
        .limit(1)
    ).first()
    started: dt.datetime = parse_time(run.started_at, "started_at") or now
    status = run.status
    failing_since: dt.datetime | None = None
    last_success: dt.datetime | None = started
    if status != OK:
        failing_since = started
        last_success = None
        if previous is not None:
            last_success = previous.last_success_at
            if previous.status != OK and previous.failing_since is not None:
                failing_since = previous.failing_since
    row: dict[str, Any] = {
        "tenant_id": tenant,
        "started_at": started,
        "finished_at": now,
        "status": status,
        "reason": run.reason,
        "failing_since": failing_since,
        "last_success_at": last_success,
        "stale_after_s": run.stale_after_s,
        "detail": {
            "failures": run.failures(),
            "results": len(run.results),
            "stored": outcome.stored,
            "retired": outcome.retired,
            "standing": outcome.standing,
        },
    }
    connection.execute(cloud_runs.insert().values(**row))
    return row
