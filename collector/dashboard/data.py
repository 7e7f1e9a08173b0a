"""What the dashboard's pages read beyond the API's queries (collector/storage/queries/, reused as is).

The hosts list filters by group, operating system, status and staleness and sorts by name or last contact,
reading one page from an index (migration 0006: agents by (os, hostname), subjects by (kind, last_seen));
its total is exact when an index gives it cheaply, otherwise counted up to COUNT_CAP ("more than 1,000"),
and not counted at all when filtering by results (that would read every host's results): the page then
says only whether there is a next one.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import (
    agents,
    check_catalog,
    iso,
    latest_results,
    result_intervals,
    status_counts,
    subjects,
    waivers,
)
from collector.storage.policy_texts import check_texts
from collector.storage.queries import common, statuses
from collector.storage.queries import host as host_view
from collector.storage.queries import summary as summary_view

COUNT_CAP = 1_000
HOST_STATUSES = {
    "failing": "with a failing result",
    "errors": "with an error",
    "passing": "with every result passing",
}
HOST_SORTS = {
    "name": "name (A to Z)",
    "-name": "name (Z to A)",
    "seen": "last contact (oldest first)",
    "-seen": "last contact (newest first)",
}


@dataclass(frozen=True)
class HostQuery:
    search: str = ""
    group: str = ""
    os: str = ""
    status: str = ""
    stale: bool = False
    revoked: bool = False  # include revoked agents
    sort: str = "name"
    page: int = 1
    per_page: int = 50

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this view (with changes), leaving defaults out: stable, short URLs."""
        values = {
            "q": self.search,
            "group": self.group,
            "os": self.os,
            "status": self.status,
            "stale": "yes" if self.stale else "",
            "revoked": "yes" if self.revoked else "",
            "sort": "" if self.sort == "name" else self.sort,
            "page": "" if self.page == 1 else str(self.page),
        }
        for key, value in changes.items():
            values[key] = "" if value in (None, False, 1, "name") and key in ("page", "sort", "stale") else str(value)
        return {k: v for k, v in values.items() if v}


def _matching(search: str) -> sa.Select[Any]:
    """Agent ids whose host name or id contains `search`, read from the (hostname, agent_id) index alone:
    scanning the rows themselves, and each host's subject, for a name cost seconds at 100,000 hosts."""
    pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return sa.select(agents.c.agent_id).where(
        sa.or_(
            sa.func.lower(agents.c.hostname).like(pattern, escape="\\"),
            agents.c.agent_id.like(pattern, escape="\\"),
        )
    )


def _host_filter(query: HostQuery, stale_cut: dt.datetime, found: list[str] | None = None) -> sa.Select[Any]:
    base = sa.select(
        agents.c.agent_id,
        agents.c.hostname,
        agents.c.os,
        agents.c.os_version,
        agents.c.agent_version,
        agents.c.revoked_at,
        subjects.c.id.label("subject_id"),
        subjects.c.group_name,
        subjects.c.last_seen,
    ).join(subjects, subjects.c.id == agents.c.subject_id)
    # Always true (agents are hosts), and it lets the planner read subjects in (kind, last_seen) order.
    base = base.where(subjects.c.kind == "host")
    if not query.revoked:
        base = base.where(agents.c.revoked_at.is_(None))
    if query.group:
        base = base.where(subjects.c.group_name == query.group)
    if query.os:
        base = base.where(agents.c.os == query.os)
    if query.stale:
        base = base.where(sa.or_(subjects.c.last_seen.is_(None), subjects.c.last_seen < stale_cut))
    if query.search:
        base = base.where(agents.c.agent_id.in_(found if found is not None else _matching(query.search)))
    results = latest_results.c
    if query.status == "failing":
        base = base.where(sa.exists().where(results.subject_id == subjects.c.id, results.status == "fail"))
    elif query.status == "errors":
        base = base.where(sa.exists().where(results.subject_id == subjects.c.id, results.status == "error"))
    elif query.status == "passing":
        base = base.where(
            ~sa.exists().where(results.subject_id == subjects.c.id, results.status.in_(("fail", "error")))
        )
    return base


def _ordered(base: sa.Select[Any], sort: str) -> sa.Select[Any]:
    if sort in ("seen", "-seen"):
        # Both keys in one direction, so that the index (kind, last_seen, id) is read forwards or backwards.
        if sort == "-seen":
            return base.order_by(subjects.c.last_seen.desc(), subjects.c.id.desc())
        return base.order_by(subjects.c.last_seen.asc(), subjects.c.id.asc())
    if sort == "-name":
        return base.order_by(agents.c.hostname.desc(), agents.c.agent_id.desc())
    return base.order_by(agents.c.hostname, agents.c.agent_id)


def host_page(
    connection: Connection, query: HostQuery, *, now: dt.datetime, stale_after: dt.timedelta
) -> dict[str, Any]:
    stale_cut = now - stale_after
    found: list[str] | None = None
    if query.search:  # the matches once (up to the cap), then the page and its count from them
        found = list(connection.execute(_matching(query.search).limit(COUNT_CAP + 1)).scalars())
        if len(found) > COUNT_CAP:
            found = None
    base = _host_filter(query, stale_cut, found)
    offset = (query.page - 1) * query.per_page
    rows = list(connection.execute(_ordered(base, query.sort).limit(query.per_page + 1).offset(offset)))
    more = len(rows) > query.per_page
    rows = rows[: query.per_page]
    total: int | None
    if query.status:
        # Counting hosts by their results would read every host's results: the page says whether there
        # is a next one instead.
        total, capped = None, False
    elif not (query.search or query.os or query.revoked):
        known = summary_view.host_counts(
            connection, now=now, stale_after=stale_after, as_of=None, group=query.group or None
        )
        total, capped = int(known["stale"] if query.stale else known["total"]), False
    else:
        counted = connection.execute(
            sa.select(sa.func.count()).select_from(base.limit(COUNT_CAP + 1).subquery())
        ).scalar_one()
        total, capped = min(int(counted), COUNT_CAP), int(counted) > COUNT_CAP
    counts = statuses.status_counts_for(connection, [row.subject_id for row in rows])
    hosts = []
    for row in rows:
        host_counts = counts.get(row.subject_id, common.empty_counts())
        hosts.append(
            {
                "agent_id": row.agent_id,
                "hostname": row.hostname,
                "group": row.group_name,
                "os": " ".join(p for p in (row.os, row.os_version) if p),
                "agent_version": row.agent_version,
                "last_seen": iso(row.last_seen),
                "stale": row.last_seen is None or row.last_seen < stale_cut,
                "revoked": row.revoked_at is not None,
                **common.score(host_counts),
            }
        )
    return {"hosts": hosts, "total": total, "capped": capped, "offset": offset, "more": more}


def host_rows_for_export(
    connection: Connection, query: HostQuery, *, now: dt.datetime, stale_after: dt.timedelta
) -> Iterator[dict[str, Any]]:
    """Every host of the view, in its order, for a CSV download (read in batches)."""
    stale_cut = now - stale_after
    statement = _ordered(_host_filter(query, stale_cut), query.sort)
    for row in connection.execution_options(yield_per=2000).execute(statement):
        yield {
            "hostname": row.hostname,
            "agent_id": row.agent_id,
            "group": row.group_name,
            "os": " ".join(p for p in (row.os, row.os_version) if p),
            "last_seen": iso(row.last_seen),
            "stale": row.last_seen is None or row.last_seen < stale_cut,
            "revoked": row.revoked_at is not None,
        }


class _Cached:
    """A small value read from the database, kept for `ttl_s` per process (filter options)."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Any) -> Any:
        entry = self._values.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.ttl_s:
            return entry[1]
        value = load()
        with self._lock:
            self._values[key] = (time.monotonic(), value)
        return value


_options = _Cached()


def host_filter_options(connection: Connection) -> dict[str, list[str]]:
    """The groups and operating systems to filter by (from small tables and an index; cached a minute)."""

    def load() -> dict[str, list[str]]:
        groups = connection.execute(sa.select(status_counts.c.group_name).distinct()).scalars().all()
        systems = connection.execute(sa.select(agents.c.os).distinct()).scalars().all()
        return {
            "groups": sorted({str(g) for g in groups if g}),
            "os": sorted({str(s) for s in systems if s}),
        }

    options: dict[str, list[str]] = _options.get(f"hosts:{id(connection.engine)}", load)
    return options


# --- what a check is -----------------------------------------------------------------------------------


def with_policy_titles(connection: Connection, checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows (policy, check, title, ...) with the title of the newest stored policy version."""
    for row in checks:
        title = check_texts.get(connection, row["policy"], None).get(row["check"], {}).get("title")
        if title:
            row["title"] = title
    return checks


def checks_with_texts(connection: Connection) -> dict[tuple[str, str], Any]:
    return {(row.policy_id, row.check_id): row for row in connection.execute(sa.select(check_catalog))}


# --- a host's history ----------------------------------------------------------------------------------


def host_history(connection: Connection, subject_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The latest status changes of a subject's results, newest first: when, which check, from what to
    what, and which observed facts differed (from the signed reports kept as evidence)."""
    intervals = result_intervals.c
    latest = list(
        connection.execute(
            sa.select(result_intervals)
            .where(intervals.subject_id == subject_id)
            .order_by(intervals.valid_from.desc(), intervals.id.desc())
            .limit(limit)
        )
    )
    if not latest:
        return []
    # The interval before each one (same check): its status is what the change was from.
    keys = {(row.policy_id, row.check_id) for row in latest}
    earliest = min(row.valid_from for row in latest)
    previous_rows = connection.execute(
        sa.select(result_intervals)
        .where(intervals.subject_id == subject_id, intervals.valid_to.is_not(None), intervals.valid_to <= earliest)
        .order_by(intervals.valid_to.desc())
        .limit(len(keys) * 2)
    )
    by_check: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in [*latest, *previous_rows]:
        if (row.policy_id, row.check_id) in keys:
            by_check[(row.policy_id, row.check_id)].append(row)
    reported = host_view.observed_from_reports(
        connection,
        [(r.report_id, r.policy_id, r.check_id) for rows in by_check.values() for r in rows if r.report_id],
    )
    changes = []
    for (policy_id, check_id), rows in by_check.items():
        rows.sort(key=lambda r: (r.valid_from, r.id))
        for index, row in enumerate(rows):
            if row not in latest:
                continue
            before = rows[index - 1] if index > 0 else None
            observed = (reported.get((row.report_id, policy_id, check_id)) or {}).get("observed")
            earlier = (reported.get((before.report_id, policy_id, check_id)) or {}).get("observed") if before else None
            changes.append(
                {
                    "at": iso(row.valid_from),
                    "policy": policy_id,
                    "check": check_id,
                    "from": before.status if before is not None else None,
                    "to": row.status,
                    "facts_changed": _differences(earlier, observed) if before is not None else [],
                }
            )
    changes.sort(key=lambda c: (c["at"] or "", c["check"]), reverse=True)
    return changes


def _differences(before: Any, after: Any) -> list[dict[str, Any]]:
    """The top-level facts whose values differ (missing counts as a difference)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [{"fact": "(observed)", "from": before, "to": after}]
    return [
        {"fact": key, "from": before.get(key), "to": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


# --- cloud subjects ------------------------------------------------------------------------------------


def cloud_subjects(connection: Connection, kind: str) -> list[dict[str, Any]]:
    """Tenants or cloud resources with their counts of results by status."""
    rows = list(
        connection.execute(
            sa.select(subjects.c.id, subjects.c.ext_id, subjects.c.name, subjects.c.last_seen)
            .where(subjects.c.kind == kind)
            .order_by(subjects.c.name, subjects.c.ext_id)
        )
    )
    counts = statuses.status_counts_for(connection, [row.id for row in rows])
    return [
        {
            "subject_id": row.id,
            "id": row.ext_id,
            "name": row.name or row.ext_id,
            "last_seen": iso(row.last_seen),
            **common.score(counts.get(row.id, common.empty_counts())),
        }
        for row in rows
    ]


def subject_results(connection: Connection, subject_ids: list[int], status: str | None = None) -> list[dict[str, Any]]:
    if not subject_ids:
        return []
    query = (
        sa.select(latest_results, subjects.c.ext_id, subjects.c.name)
        .join(subjects, subjects.c.id == latest_results.c.subject_id)
        .where(latest_results.c.subject_id.in_(subject_ids))
        .order_by(subjects.c.name, latest_results.c.policy_id, latest_results.c.check_id)
    )
    if status:
        query = query.where(latest_results.c.status == status)
    return [
        {
            "subject": row.name or row.ext_id,
            "subject_id": row.ext_id,
            "policy": row.policy_id,
            "check": row.check_id,
            "title": row.title,
            "severity": row.severity,
            "status": row.status,
            "reason": row.reason,
            "observed": row.observed,
            "expectation": row.expectation,
            "since": iso(row.since),
            "policy_hash": row.policy_hash,
        }
        for row in connection.execute(query)
    ]


def mfa_chart(connection: Connection, subject_id: int, policy_id: str, today: dt.date) -> Any:
    """MFA coverage over the last year, from the tenant's daily observations (collector/storage/
    observations.py, kept because cloud runs have no signed report), as a chart figure; None without any."""
    from collector.dashboard.figures import drawn, figure
    from collector.reports import charts
    from collector.storage import observations

    samples = [
        row
        for row in observations.series(connection, policy_id, "mfa-coverage", today - dt.timedelta(days=365), today)
        if row.subject_id == subject_id and isinstance(row.observed, dict)
    ]
    if not samples:
        return None
    labels = [row.day.strftime("%d %b %Y") for row in samples]
    values = [row.observed.get("coverage_percent") for row in samples]
    chart = drawn(
        charts.line_chart,
        "Members who can sign in with MFA",
        labels,
        {"MFA capable": [None if v is None else float(v) for v in values]},
        chart_id="tenant-mfa",
        notes=("One observation a day: the last cloud run of that day.",),
    )
    return figure(chart)


# --- waivers -------------------------------------------------------------------------------------------


def waivers_expiring(connection: Connection, today: dt.date, within_days: int = 30) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(waivers)
        .where(
            waivers.c.state == "approved",
            waivers.c.expires >= today,
            waivers.c.expires <= today + dt.timedelta(days=within_days),
        )
        .order_by(waivers.c.expires, waivers.c.id)
    )
    return [
        {"id": row.id, "check": row.check_id, "expires": row.expires.isoformat(), "approved_by": row.approved_by}
        for row in rows
    ]


def known_checks(connection: Connection) -> list[dict[str, str]]:
    return [
        {"policy": row.policy_id, "check": row.check_id, "title": row.title}
        for row in connection.execute(
            sa.select(check_catalog.c.policy_id, check_catalog.c.check_id, check_catalog.c.title).order_by(
                check_catalog.c.policy_id, check_catalog.c.check_id
            )
        )
    ]
