"""One check: its counts, and its subjects in one status (longest first, a page at a time), now or as at the
end of a day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import check_catalog, iso, latest_results, subjects
from collector.storage.queries.common import Filters, QueryError, catalog, empty_counts, score
from collector.storage.queries.statuses import count_rows, held_at
from collector.storage.remediation import remediation_of


def resolve_policy(connection: Connection, check_id: str, policy_id: str | None) -> str:
    if policy_id:
        return policy_id
    policies = list(
        connection.execute(
            sa.select(check_catalog.c.policy_id)
            .where(check_catalog.c.check_id == check_id)
            .order_by(check_catalog.c.policy_id)
        ).scalars()
    )
    if not policies:
        raise QueryError("not_found", f"no results for check {check_id!r}")
    if len(policies) > 1:
        raise QueryError("ambiguous", f"check {check_id!r} is in policies {', '.join(policies)}: name the policy")
    return str(policies[0])


def check(
    connection: Connection,
    check_id: str,
    *,
    policy_id: str | None = None,
    status: str = "fail",
    as_of: dt.date | None = None,
    group: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    policy_id = resolve_policy(connection, check_id, policy_id)
    entry = catalog(connection).get((policy_id, check_id))
    counts = empty_counts()
    for (_group, _policy, _check, held_status), n in count_rows(
        connection, as_of, Filters(group=group, policy=policy_id), check_id
    ).items():
        if held_status in counts:
            counts[held_status] += n
    held = held_at(as_of)
    latest = latest_results.c
    # What the latest rows say beyond the status (as at a past date, the report that began it says it).
    extras = (latest.reason, latest.observed, latest.waiver_id) if as_of is None else ()
    query = (
        sa.select(held.since, held.report_id, *extras, subjects.c.kind, subjects.c.ext_id, subjects.c.name,
                  subjects.c.group_name)
        .join(subjects, subjects.c.id == held.subject_id)
        .where(held.policy_id == policy_id, held.check_id == check_id, held.status == status, *held.conditions)
    )  # fmt: skip
    if group:
        query = query.where(subjects.c.group_name == group)
    # Longest in this status first (in index order: a page does not sort every subject).
    page = query.order_by(held.since, held.subject_id).limit(limit).offset(offset)
    subjects_found: list[dict[str, Any]] = []
    for row in connection.execute(page):
        found = {"kind": row.kind, "id": row.ext_id, "name": row.name, "group": row.group_name, "since": iso(row[0])}
        if as_of is None:
            found.update(reason=row.reason, observed=row.observed, waiver_id=row.waiver_id)
        else:
            found["report_id"] = row.report_id
        subjects_found.append(found)
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "policy": policy_id,
        "check": check_id,
        "title": entry.title if entry is not None else "",
        "severity": entry.severity if entry is not None else "",
        "frameworks": entry.frameworks if entry is not None else {},
        "remediation": remediation_of(
            connection, policy_id, entry.policy_hash if entry is not None else None, check_id
        ),
        "policy_version": entry.policy_version if entry is not None else None,
        "policy_hash": entry.policy_hash if entry is not None else None,
        "score": score(counts),
        "status": status,
        "limit": limit,
        "offset": offset,
        "subjects": subjects_found,
    }
