"""Storing a cloud run where endpoint results go: one subject per tenant and per cloud resource.

Results pass through the same parser and `store_results` as an agent's report, so latest state, history
intervals, counters, the check catalog and the collector's waivers treat them alike. A cloud run has no
signed report to keep: `report_id` is empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from checks.results import Result, Subject
from collector.cloud.run import CloudRun
from collector.storage.history import upsert
from collector.storage.ingest import SubjectRow, WaiverSource, parse_result, store_results
from collector.storage.models import subjects
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


def store_cloud_run(
    connection: Connection,
    run: CloudRun,
    *,
    now: dt.datetime,
    waivers: WaiverSource,
) -> int:
    """Store every result of the run in the caller's transaction; returns how many were stored."""
    for policy in run.policies:  # the collector's own policies say what their checks are
        write_catalog(connection, policy, now)
    stored = 0
    for subject, results in sorted(group_by_subject(run.results).items(), key=lambda item: item[0].id):
        row = lock_cloud_subject(connection, subject, now)
        incoming = [parse_result(r.to_dict(), f"cloud result {r.check_id} on {subject.id}") for r in results]
        outcome = store_results(connection, row, incoming, now=now, report_id=None, waivers=waivers)
        stored += outcome.stored
    return stored
