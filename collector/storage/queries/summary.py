"""The summary: counts by policy, check, group and control, and the hosts enrolled and stale; now or as at
the end of a day. The cloud's state (whether its runs could observe) is given now only."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.results import Severity
from collector.storage.models import agents, cloud_runs, iso, latest_results, subjects
from collector.storage.queries.common import NO_FILTERS, Filters, catalog, empty_counts, end_of, score, weight
from collector.storage.queries.statuses import count_rows

CLOUD_GROUP = "cloud"  # collector/cloud/store.py
CLOUD_KINDS = ("tenant", "cloud_resource")


def summary(
    connection: Connection,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    as_of: dt.date | None = None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    checks_known = catalog(connection)
    totals = empty_counts()
    by_policy: dict[str, dict[str, int]] = defaultdict(empty_counts)
    by_check: dict[tuple[str, str], dict[str, int]] = defaultdict(empty_counts)
    by_group: dict[str, dict[str, int]] = defaultdict(empty_counts)
    by_control: dict[tuple[str, str], dict[str, int]] = defaultdict(empty_counts)
    weighted = {"pass": 0.0, "fail": 0.0}
    for (group_name, policy_id, check_id, status), n in count_rows(connection, as_of, filters).items():
        if status not in totals:
            continue
        totals[status] += n
        by_policy[policy_id][status] += n
        by_check[(policy_id, check_id)][status] += n
        by_group[group_name][status] += n
        entry = checks_known.get((policy_id, check_id))
        if status in weighted:
            weighted[status] += n * weight(entry)
        for framework, controls in (entry.frameworks if entry is not None else {}).items():
            for control in controls or []:
                by_control[(framework, str(control))][status] += n
    checks = []
    for (policy_id, check_id), counts in by_check.items():
        entry = checks_known.get((policy_id, check_id))
        checks.append(
            {
                "policy": policy_id,
                "check": check_id,
                "title": entry.title if entry is not None else "",
                "severity": entry.severity if entry is not None else "",
                **score(counts),
            }
        )
    severity_rank = {s.value: i for i, s in enumerate(Severity)}
    checks.sort(key=lambda c: (-c["fail"], severity_rank.get(c["severity"], 9), c["policy"], c["check"]))
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "generated_at": iso(now),
        "filters": {"group": filters.group, "policy": filters.policy},
        "totals": score(totals, weighted["pass"], weighted["fail"]),
        "hosts": host_counts(connection, now=now, stale_after=stale_after, as_of=as_of, group=filters.group),
        # Whether the cloud checks could observe, and how old what is known is: now only (not kept by date).
        "cloud": cloud_state(connection, now) if as_of is None and filters.group in (None, CLOUD_GROUP) else [],
        "by_policy": [{"policy": k, **score(v)} for k, v in sorted(by_policy.items())],
        "by_group": [{"group": k, **score(v)} for k, v in sorted(by_group.items())],
        "by_check": checks,
        "by_control": [
            {"framework": framework, "control": control, **score(v)}
            for (framework, control), v in sorted(by_control.items())
        ],
    }


def host_counts(
    connection: Connection, *, now: dt.datetime, stale_after: dt.timedelta, as_of: dt.date | None, group: str | None
) -> dict[str, Any]:
    """Enrolled (not revoked) hosts and how many are stale. As at a past date: the hosts enrolled and not
    revoked then; staleness then is not kept, so it is None."""
    hours = stale_after.total_seconds() / 3600
    if as_of is not None:
        # Enrolled by then, less those also revoked by then: each count reads only its own index range
        # (as one condition, `revoked_at IS NULL OR revoked_at >= moment`, it read every agent's row).
        moment = end_of(as_of)
        enrolled = sa.select(sa.func.count()).select_from(agents).where(agents.c.enrolled_at < moment)
        if group:
            enrolled = enrolled.where(agents.c.group_name == group)
        revoked_then = enrolled.where(agents.c.revoked_at < moment)
        total = connection.execute(enrolled).scalar_one() - connection.execute(revoked_then).scalar_one()
        return {"total": total, "stale": None, "stale_after_hours": hours}
    # Counted from the subjects index; the (few) revoked agents are taken off.
    stale_cut = now - stale_after
    hosts = sa.select(sa.func.count()).select_from(subjects).where(subjects.c.kind == "host")
    if group:
        hosts = hosts.where(subjects.c.group_name == group)
    revoked, revoked_stale = revoked_hosts(connection, group, stale_cut)
    total = connection.execute(hosts).scalar_one() - revoked
    # Not seen since the cut, and never seen, counted apart: each reads only its own range of the index
    # (together, as one OR, they read every host's entry).
    stale_total = (
        connection.execute(hosts.where(subjects.c.last_seen < stale_cut)).scalar_one()
        + connection.execute(hosts.where(subjects.c.last_seen.is_(None))).scalar_one()
        - revoked_stale
    )
    return {"total": total, "stale": stale_total, "stale_after_hours": hours}


def revoked_hosts(connection: Connection, group: str | None, stale_cut: dt.datetime) -> tuple[int, int]:
    """Revoked hosts, and how many of them are stale. The revoked agents are found through their index
    first, in its order: otherwise SQLite's planner (whose statistics show one value, NULL, in that index)
    scans every agent, 20 ms at 100,000 hosts, for the few revoked."""
    found = connection.execute(
        sa.select(agents.c.subject_id).where(agents.c.revoked_at.is_not(None)).order_by(agents.c.revoked_at)
    )
    subject_ids = [row[0] for row in found]
    revoked = stale = 0
    for start in range(0, len(subject_ids), 500):
        query = sa.select(subjects.c.last_seen).where(
            subjects.c.id.in_(subject_ids[start : start + 500]), subjects.c.kind == "host"
        )
        if group:
            query = query.where(subjects.c.group_name == group)
        for (last_seen,) in connection.execute(query):
            revoked += 1
            stale += last_seen is None or last_seen < stale_cut
    return revoked, stale


def cloud_state(connection: Connection, now: dt.datetime) -> list[dict[str, Any]]:
    """Per tenant: its last cloud run (ok, partial or failed, why, since when not ok, the last ok run) and how
    many cloud results are stale, older than the run's `cloud.stale_after` (left standing by runs that could
    not observe them)."""
    last_ids = [
        row[0] for row in connection.execute(sa.select(sa.func.max(cloud_runs.c.id)).group_by(cloud_runs.c.tenant_id))
    ]
    if not last_ids:
        return []
    runs = list(
        connection.execute(sa.select(cloud_runs).where(cloud_runs.c.id.in_(last_ids)).order_by(cloud_runs.c.tenant_id))
    )
    cut = now - dt.timedelta(seconds=min(run.stale_after_s for run in runs))
    stale, total, oldest = cloud_result_ages(connection, cut)
    return [
        {
            "tenant": run.tenant_id,
            "last_run_at": iso(run.started_at),
            "status": run.status,
            "reason": run.reason,
            "failing_since": iso(run.failing_since),
            "last_success_at": iso(run.last_success_at),
            "not_observed": len((run.detail or {}).get("failures", [])),
            "stale_after_hours": round(run.stale_after_s / 3600, 2),
            "results": total,
            "stale_results": stale,
            "oldest_result_at": iso(oldest),
        }
        for run in runs
    ]


def cloud_result_ages(connection: Connection, cut: dt.datetime) -> tuple[int, int, dt.datetime | None]:
    """(cloud results evaluated before `cut`, cloud results, the oldest evaluation) of results that count;
    cloud subjects are found through their index first, so the hosts' results are never read."""
    subject_ids = list(connection.execute(sa.select(subjects.c.id).where(subjects.c.kind.in_(CLOUD_KINDS))).scalars())
    stale = total = 0
    oldest: dt.datetime | None = None
    for start in range(0, len(subject_ids), 500):
        chunk = subject_ids[start : start + 500]
        row = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.sum(sa.case((latest_results.c.evaluated_at < cut, 1), else_=0)),
                sa.func.min(latest_results.c.evaluated_at),
            ).where(latest_results.c.subject_id.in_(chunk), latest_results.c.status != "retired")
        ).one()
        total += int(row[0] or 0)
        stale += int(row[1] or 0)
        if row[2] is not None and (oldest is None or row[2] < oldest):
            oldest = row[2]
    return stale, total, oldest
