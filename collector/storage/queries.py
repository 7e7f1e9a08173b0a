"""The compliance views: summary, hosts, one host, one check, trends; now or as at a date.

"Now" reads the striped counters (a few thousand rows whatever the fleet size) and the latest rows of the
subjects asked for. "As at a date" means at the end of that day (UTC): the summary and trends sum the
daily changes up to that day; a host's or a check's results come from the history intervals that were
open then. Compliance is passed / (passed + failed); errors, not applicable and waived are counted beside
it, never dropped; the weighted ratio uses the check's weight or its severity's.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from checks.results import SEVERITY_WEIGHTS, Severity
from collector.storage.ingest import evaluated_at_sql
from collector.storage.models import (
    agents,
    check_catalog,
    cloud_runs,
    daily_changes,
    iso,
    latest_results,
    reports,
    result_intervals,
    status_counts,
    subjects,
)
from collector.storage.remediation import remediation_of, remediations

STATUSES = ("pass", "fail", "error", "not_applicable", "waived")


# Bounds of what a query may ask (the API and the CLI check them too, with their own messages).
MAX_OFFSET = 1_000_000_000
MAX_SEARCH = 200
MAX_TREND_POINTS = 1000


class QueryError(Exception):
    def __init__(self, code: str, message: str, candidates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # For `ambiguous`: what the name could mean, for the caller to list (each has what tells them apart).
        self.candidates = candidates or []


AMBIGUOUS_LISTED = 50  # agents listed when a host name is ambiguous; more are counted, not listed


@dataclass(frozen=True)
class Filters:
    group: str | None = None
    policy: str | None = None


def retention_horizon(today: dt.date, retention_days: int) -> dt.date:
    """The first day whose state is still known (`retention_days` of history are kept)."""
    try:
        return today - dt.timedelta(days=retention_days)
    except OverflowError:  # more days than the calendar holds: everything is kept
        return dt.date.min


def check_as_of(as_of: dt.date | None, today: dt.date, retention_days: int, name: str = "as_of") -> None:
    """A date the state can be given as at: not in the future (waivers that will have expired by then, hosts
    that will have gone quiet, are not known today), nor before the history kept (`retention_days`)."""
    if as_of is None:
        return
    if as_of > today:
        raise QueryError(
            "as_of_in_future",
            f"{name} {as_of.isoformat()} is in the future (today is {today.isoformat()}, UTC): "
            "the state is known up to today",
        )
    if as_of < retention_horizon(today, retention_days):
        raise QueryError(
            "outside_retention",
            f"{name} {as_of.isoformat()} is before the {retention_days} days of history kept (retention_days)",
        )


TREND_SPANS = {"day": dt.timedelta(days=29), "week": dt.timedelta(weeks=11), "month": dt.timedelta(days=334)}


def trend_range(
    period: str,
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
    retention_days: int,
    names: tuple[str, str] = ("from", "to"),
) -> tuple[dt.date, dt.date]:
    """The days a trend covers: `end` defaults to today, `start` to a span before it (never before the
    history kept); both are checked as `as_of` dates are. `names` are those of the two parameters."""
    if period not in TREND_SPANS:
        raise QueryError("bad_request", "period must be day, week or month")
    end = end or today
    check_as_of(end, today, retention_days, names[1])
    if start is None:
        horizon = retention_horizon(today, retention_days)
        start = end - TREND_SPANS[period] if end - horizon > TREND_SPANS[period] else horizon
    check_as_of(start, today, retention_days, names[0])
    if start > end:
        raise QueryError("bad_request", "the start of a trend must not be after its end")
    return start, end


def end_of(day: dt.date) -> dt.datetime:
    """The first instant after `day`: "as at day" means the state just before it."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def _counts() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def _score(
    counts: dict[str, int], weighted_pass: float | None = None, weighted_fail: float | None = None
) -> dict[str, Any]:
    judged = counts["pass"] + counts["fail"]
    result: dict[str, Any] = {**counts, "total": sum(counts.values())}
    result["compliance"] = None if judged == 0 else round(counts["pass"] / judged, 4)
    if weighted_pass is not None and weighted_fail is not None:
        weighted = weighted_pass + weighted_fail
        result["compliance_weighted"] = None if weighted == 0 else round(weighted_pass / weighted, 4)
    return result


def _catalog(connection: Connection) -> dict[tuple[str, str], Any]:
    return {(row.policy_id, row.check_id): row for row in connection.execute(sa.select(check_catalog))}


def _weight(entry: Any) -> float:
    if entry is None:
        return 1.0
    if entry.weight is not None:
        return float(entry.weight)
    try:
        return SEVERITY_WEIGHTS[Severity(entry.severity)]
    except ValueError:
        return 1.0


def _count_rows(connection: Connection, as_of: dt.date | None, filters: Filters) -> list[Any]:
    """(group, policy, check, status, n) for now or at the end of `as_of`."""
    if as_of is None:
        table, value = status_counts, status_counts.c.count
    else:
        table, value = daily_changes, daily_changes.c.delta
    columns = (table.c.group_name, table.c.policy_id, table.c.check_id, table.c.status)
    query = sa.select(*columns, sa.func.sum(value).label("n")).group_by(*columns)
    if as_of is not None:
        query = query.where(daily_changes.c.day <= as_of)
    if filters.group:
        query = query.where(table.c.group_name == filters.group)
    if filters.policy:
        query = query.where(table.c.policy_id == filters.policy)
    return [row for row in connection.execute(query) if row.n]


def summary(
    connection: Connection,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    as_of: dt.date | None = None,
    filters: Filters = Filters(),
) -> dict[str, Any]:
    catalog = _catalog(connection)
    totals = _counts()
    by_policy: dict[str, dict[str, int]] = defaultdict(_counts)
    by_check: dict[tuple[str, str], dict[str, int]] = defaultdict(_counts)
    by_group: dict[str, dict[str, int]] = defaultdict(_counts)
    by_control: dict[tuple[str, str], dict[str, int]] = defaultdict(_counts)
    weighted = {"pass": 0.0, "fail": 0.0}
    for row in _count_rows(connection, as_of, filters):
        n = int(row.n)
        if row.status not in totals:
            continue
        totals[row.status] += n
        by_policy[row.policy_id][row.status] += n
        by_check[(row.policy_id, row.check_id)][row.status] += n
        by_group[row.group_name][row.status] += n
        entry = catalog.get((row.policy_id, row.check_id))
        if row.status in weighted:
            weighted[row.status] += n * _weight(entry)
        for framework, controls in (entry.frameworks if entry is not None else {}).items():
            for control in controls or []:
                by_control[(framework, str(control))][row.status] += n
    checks = []
    for (policy_id, check_id), counts in by_check.items():
        entry = catalog.get((policy_id, check_id))
        checks.append(
            {
                "policy": policy_id,
                "check": check_id,
                "title": entry.title if entry is not None else "",
                "severity": entry.severity if entry is not None else "",
                **_score(counts),
            }
        )
    severity_rank = {s.value: i for i, s in enumerate(Severity)}
    checks.sort(key=lambda c: (-c["fail"], severity_rank.get(c["severity"], 9), c["policy"], c["check"]))
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "generated_at": iso(now),
        "filters": {"group": filters.group, "policy": filters.policy},
        "totals": _score(totals, weighted["pass"], weighted["fail"]),
        "hosts": _host_counts(connection, now=now, stale_after=stale_after, as_of=as_of, group=filters.group),
        # Whether the cloud checks could observe, and how old what is known is: now only (not kept by date).
        "cloud": cloud_state(connection, now) if as_of is None and filters.group in (None, CLOUD_GROUP) else [],
        "by_policy": [{"policy": k, **_score(v)} for k, v in sorted(by_policy.items())],
        "by_group": [{"group": k, **_score(v)} for k, v in sorted(by_group.items())],
        "by_check": checks,
        "by_control": [
            {"framework": framework, "control": control, **_score(v)}
            for (framework, control), v in sorted(by_control.items())
        ],
    }


def _host_counts(
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
    revoked, revoked_stale = _revoked_hosts(connection, group, stale_cut)
    total = connection.execute(hosts).scalar_one() - revoked
    # Not seen since the cut, and never seen, counted apart: each reads only its own range of the index
    # (together, as one OR, they read every host's entry).
    stale_total = (
        connection.execute(hosts.where(subjects.c.last_seen < stale_cut)).scalar_one()
        + connection.execute(hosts.where(subjects.c.last_seen.is_(None))).scalar_one()
        - revoked_stale
    )
    return {"total": total, "stale": stale_total, "stale_after_hours": hours}


def _revoked_hosts(connection: Connection, group: str | None, stale_cut: dt.datetime) -> tuple[int, int]:
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


CLOUD_GROUP = "cloud"  # collector/cloud/store.py
CLOUD_KINDS = ("tenant", "cloud_resource")


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
    stale, total, oldest = _cloud_result_ages(connection, cut)
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


def _cloud_result_ages(connection: Connection, cut: dt.datetime) -> tuple[int, int, dt.datetime | None]:
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


# --- hosts ---------------------------------------------------------------------------------------------


def hosts(
    connection: Connection,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    group: str | None = None,
    stale_only: bool = False,
    search: str | None = None,
    include_revoked: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    base = sa.select(
        agents.c.agent_id,
        agents.c.hostname,
        agents.c.os,
        agents.c.os_version,
        agents.c.agent_version,
        agents.c.revoked_at,
        agents.c.enrolled_at,
        subjects.c.id.label("subject_id"),
        subjects.c.group_name,
        subjects.c.last_seen,
        subjects.c.last_report_at,
    ).join(subjects, subjects.c.id == agents.c.subject_id)
    stale_cut = now - stale_after
    if not include_revoked:
        base = base.where(agents.c.revoked_at.is_(None))
    if group:
        base = base.where(subjects.c.group_name == group)
    if stale_only:
        base = base.where(sa.or_(subjects.c.last_seen.is_(None), subjects.c.last_seen < stale_cut))
    if search:
        pattern = contains_pattern(search)
        base = base.where(
            sa.or_(
                sa.func.lower(agents.c.hostname).like(pattern, escape="\\"),
                agents.c.agent_id.like(pattern, escape="\\"),
            )
        )
    if search or include_revoked:
        total = connection.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    else:  # from the subjects index, without joining every host
        known = _host_counts(connection, now=now, stale_after=stale_after, as_of=None, group=group)
        total = known["stale"] if stale_only else known["total"]
    rows = list(connection.execute(base.order_by(agents.c.hostname, agents.c.agent_id).limit(limit).offset(offset)))
    counts = _status_counts_for(connection, [row.subject_id for row in rows])
    items = []
    for row in rows:
        host_counts = counts.get(row.subject_id, _counts())
        items.append(
            {
                "agent_id": row.agent_id,
                "hostname": row.hostname,
                "group": row.group_name,
                "os": " ".join(p for p in (row.os, row.os_version) if p),
                "agent_version": row.agent_version,
                "enrolled_at": iso(row.enrolled_at),
                "last_seen": iso(row.last_seen),
                "last_report_at": iso(row.last_report_at),
                "stale": row.last_seen is None or row.last_seen < stale_cut,
                "revoked": row.revoked_at is not None,
                **_score(host_counts),
            }
        )
    return {"total": total, "limit": limit, "offset": offset, "hosts": items}


def contains_pattern(search: str) -> str:
    """A LIKE pattern that finds `search` literally, anywhere (lower case): its %, _ and \\ escaped."""
    if len(search) > MAX_SEARCH:
        raise QueryError("bad_request", f"a search is at most {MAX_SEARCH} characters")
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _status_counts_for(connection: Connection, subject_ids: list[int]) -> dict[int, dict[str, int]]:
    if not subject_ids:
        return {}
    result: dict[int, dict[str, int]] = defaultdict(_counts)
    for row in connection.execute(
        sa.select(latest_results.c.subject_id, latest_results.c.status, sa.func.count().label("n"))
        .where(latest_results.c.subject_id.in_(subject_ids))
        .group_by(latest_results.c.subject_id, latest_results.c.status)
    ):
        if row.status in STATUSES:
            result[row.subject_id][row.status] = int(row.n)
    return result


def find_host(connection: Connection, key: str) -> Any:
    """An agent by id, or by host name when exactly one agent has it."""
    query = sa.select(agents, subjects.c.last_seen, subjects.c.last_report_at).join(
        subjects, subjects.c.id == agents.c.subject_id
    )
    row = connection.execute(query.where(agents.c.agent_id == key)).first()
    if row is not None:
        return row
    named = query.where(sa.func.lower(agents.c.hostname) == key.lower())
    matches = list(
        connection.execute(named.order_by(subjects.c.last_seen.desc(), agents.c.agent_id).limit(AMBIGUOUS_LISTED + 1))
    )
    if not matches:
        raise QueryError("not_found", f"no host with agent id or host name {key!r}")
    if len(matches) > 1:
        # Several agents on one machine, or machines named alike: never pick one; say which there are.
        total = len(matches)
        if total > AMBIGUOUS_LISTED:
            total = int(connection.execute(sa.select(sa.func.count()).select_from(named.subquery())).scalar_one())
        candidates = [
            {
                "agent_id": m.agent_id,
                "hostname": m.hostname,
                "group": m.group_name,
                "last_seen": iso(m.last_seen),
                "revoked_at": iso(m.revoked_at),
            }
            for m in matches[:AMBIGUOUS_LISTED]
        ]
        raise QueryError(
            "ambiguous",
            f"host name {key!r} is ambiguous: {total} agents have it; name one by its agent id",
            candidates,
        )
    return matches[0]


def _observed_from_reports(
    connection: Connection, wanted: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], Any]:
    """(report_id, policy, check) -> the result as it was reported, read back from the kept raw reports."""
    by_report: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for report_id, policy_id, check_id in wanted:
        by_report[report_id].add((policy_id, check_id))
    found: dict[tuple[str, str, str], Any] = {}
    if not by_report:
        return found
    rows = connection.execute(
        sa.select(reports.c.report_id, reports.c.body_zlib).where(reports.c.report_id.in_(list(by_report)))
    )
    for row in rows:
        body = json.loads(zlib.decompress(row.body_zlib))
        for result in body.get("results", []):
            key = ((result.get("policy") or {}).get("id"), result.get("check_id"))
            if key in by_report[row.report_id]:
                found[(row.report_id, key[0], key[1])] = result
    return found


def host(
    connection: Connection,
    key: str,
    *,
    now: dt.datetime,
    stale_after: dt.timedelta,
    as_of: dt.date | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    agent = find_host(connection, key)
    catalog = _catalog(connection)
    results: list[dict[str, Any]] = []
    if as_of is None:
        query = (
            sa.select(latest_results, evaluated_at_sql(latest_results, subjects).label("evaluated"))
            .join(subjects, subjects.c.id == latest_results.c.subject_id)
            .where(latest_results.c.subject_id == agent.subject_id)
        )
        if status:
            query = query.where(latest_results.c.status == status)
        for row in connection.execute(query.order_by(latest_results.c.policy_id, latest_results.c.check_id)):
            entry = catalog.get((row.policy_id, row.check_id))
            results.append(
                {
                    "policy": row.policy_id,
                    "check": row.check_id,
                    "title": row.title,
                    "severity": row.severity,
                    "status": row.status,
                    "waived_status": row.waived_status,
                    "waiver_id": row.waiver_id,
                    "reason": row.reason,
                    "observed": row.observed,
                    "expectation": row.expectation,
                    "since": iso(row.since),
                    "evaluated_at": iso(row.evaluated),
                    "policy_version": row.policy_version,
                    "policy_hash": row.policy_hash,
                    "report_id": row.report_id,
                    "frameworks": entry.frameworks if entry is not None else {},
                }
            )
    else:
        moment = end_of(as_of)
        intervals = result_intervals.c
        query = sa.select(result_intervals).where(
            intervals.subject_id == agent.subject_id,
            intervals.valid_from < moment,
            sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment),
        )
        if status:
            query = query.where(intervals.status == status)
        rows = list(connection.execute(query.order_by(intervals.policy_id, intervals.check_id)))
        reported = _observed_from_reports(
            connection, [(r.report_id, r.policy_id, r.check_id) for r in rows if r.report_id]
        )
        for row in rows:
            entry = catalog.get((row.policy_id, row.check_id))
            original = reported.get((row.report_id, row.policy_id, row.check_id)) or {}
            results.append(
                {
                    "policy": row.policy_id,
                    "check": row.check_id,
                    "title": entry.title if entry is not None else original.get("title", ""),
                    "severity": entry.severity if entry is not None else original.get("severity", ""),
                    "status": row.status,
                    "reason": original.get("reason", ""),
                    # What was observed when this status began (from the signed report kept as evidence).
                    "observed": original.get("observed"),
                    "expectation": original.get("expectation"),
                    "since": iso(row.valid_from),
                    "until": iso(row.valid_to),
                    "policy_hash": row.policy_hash,
                    "report_id": row.report_id,
                    "frameworks": entry.frameworks if entry is not None else {},
                }
            )
    counts = _counts()
    texts: dict[tuple[str, str | None], dict[str, str]] = {}  # one look-up per policy version, not per result
    for result in results:
        if result["status"] in counts:  # not `retired`: a revoked host's results no longer count
            counts[result["status"]] += 1
        # What to do about it, for what needs doing: a failure, or a check that could not be judged.
        result["remediation"] = None
        if result["status"] in ("fail", "error"):
            version = (result["policy"], result["policy_hash"])
            if version not in texts:
                texts[version] = remediations(connection, *version)
            result["remediation"] = texts[version].get(result["check"]) or None
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "host": {
            "agent_id": agent.agent_id,
            "hostname": agent.hostname,
            "group": agent.group_name,
            "os": agent.os,
            "os_version": agent.os_version,
            "agent_version": agent.agent_version,
            "facts": agent.host_facts,
            "enrolled_at": iso(agent.enrolled_at),
            "last_seen": iso(agent.last_seen),
            "last_report_at": iso(agent.last_report_at),
            "stale": agent.last_seen is None or agent.last_seen < now - stale_after,
            "revoked_at": iso(agent.revoked_at),
        },
        "score": _score(counts),
        "results": results,
    }


# --- one check -----------------------------------------------------------------------------------------


def _resolve_policy(connection: Connection, check_id: str, policy_id: str | None) -> str:
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
    policy_id = _resolve_policy(connection, check_id, policy_id)
    entry = _catalog(connection).get((policy_id, check_id))
    counts = _counts()
    for row in _count_rows(connection, as_of, Filters(group=group, policy=policy_id)):
        if row.check_id == check_id and row.status in counts:
            counts[row.status] += int(row.n)
    subject_columns = (subjects.c.kind, subjects.c.ext_id, subjects.c.name, subjects.c.group_name)
    subjects_found: list[dict[str, Any]] = []
    if as_of is None:
        latest = latest_results.c
        query = (
            sa.select(
                latest.subject_id, latest.since, latest.reason, latest.observed, latest.waiver_id, *subject_columns
            )
            .join(subjects, subjects.c.id == latest.subject_id)
            .where(latest.policy_id == policy_id, latest.check_id == check_id, latest.status == status)
        )
        if group:
            query = query.where(subjects.c.group_name == group)
        # Longest in this status first (in index order: a page does not sort every subject).
        page = query.order_by(latest.since, latest.subject_id).limit(limit).offset(offset)
        for row in connection.execute(page):
            subjects_found.append(
                {
                    "kind": row.kind,
                    "id": row.ext_id,
                    "name": row.name,
                    "group": row.group_name,
                    "since": iso(row.since),
                    "reason": row.reason,
                    "observed": row.observed,
                    "waiver_id": row.waiver_id,
                }
            )
    else:
        moment = end_of(as_of)
        intervals = result_intervals.c
        history = (
            sa.select(intervals.valid_from, intervals.report_id, *subject_columns)
            .join(subjects, subjects.c.id == intervals.subject_id)
            .where(
                intervals.policy_id == policy_id,
                intervals.check_id == check_id,
                intervals.status == status,
                intervals.valid_from < moment,
                sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment),
            )
        )
        if group:
            history = history.where(subjects.c.group_name == group)
        page = history.order_by(intervals.valid_from, intervals.subject_id).limit(limit).offset(offset)
        for row in connection.execute(page):
            subjects_found.append(
                {
                    "kind": row.kind,
                    "id": row.ext_id,
                    "name": row.name,
                    "group": row.group_name,
                    "since": iso(row.valid_from),
                    "report_id": row.report_id,
                }
            )
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
        "score": _score(counts),
        "status": status,
        "limit": limit,
        "offset": offset,
        "subjects": subjects_found,
    }


# --- trends --------------------------------------------------------------------------------------------


def point_count(period: str, start: dt.date, end: dt.date) -> int:
    """How many points a trend from start to end has, counted without building them."""
    if start > end:
        raise QueryError("bad_request", "the start of a trend must not be after its end")
    if period == "day":
        return (end - start).days + 1
    if period == "week":
        return (end - (start - dt.timedelta(days=start.weekday()))).days // 7 + 1
    if period == "month":
        return (end.year - start.year) * 12 + end.month - start.month + 1
    raise QueryError("bad_request", "period must be day, week or month")


def bucket_ends(period: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The last day of each day, ISO week or month from start to end (the last bucket ends at `end`)."""
    count = point_count(period, start, end)
    if count > MAX_TREND_POINTS:
        raise QueryError(
            "bad_request",
            f"a trend has at most {MAX_TREND_POINTS} points ({count} asked): use a longer period or a shorter range",
        )
    days: list[dt.date] = []
    current = start
    while current <= end:
        if period == "day":
            bucket_end = current
        elif period == "week":
            bucket_end = current + dt.timedelta(days=6 - current.weekday())
        elif period == "month":
            following = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            bucket_end = following - dt.timedelta(days=1)
        else:
            raise QueryError("bad_request", "period must be day, week or month")
        bucket_end = min(bucket_end, end)
        days.append(bucket_end)
        current = bucket_end + dt.timedelta(days=1)
    return days


def trends(
    connection: Connection,
    *,
    period: str,
    start: dt.date,
    end: dt.date,
    filters: Filters = Filters(),
    check_id: str | None = None,
) -> dict[str, Any]:
    ends = bucket_ends(period, start, end)  # refuses more than MAX_TREND_POINTS before building any
    changes = daily_changes.c
    query = (
        sa.select(changes.day, changes.status, sa.func.sum(changes.delta).label("n"))
        .where(changes.day <= end)
        .group_by(changes.day, changes.status)
        .order_by(changes.day)
    )
    if filters.group:
        query = query.where(changes.group_name == filters.group)
    if filters.policy:
        query = query.where(changes.policy_id == filters.policy)
    if check_id:
        query = query.where(changes.check_id == check_id)
    running = _counts()
    points = []
    rows = list(connection.execute(query))
    index = 0
    for bucket_end in ends:
        while index < len(rows) and rows[index].day <= bucket_end:
            if rows[index].status in running:
                running[rows[index].status] += int(rows[index].n)
            index += 1
        points.append({"date": bucket_end.isoformat(), **_score(dict(running))})
    return {
        "period": period,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "filters": {"group": filters.group, "policy": filters.policy, "check": check_id},
        "points": points,
    }
