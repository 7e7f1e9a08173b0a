"""The figures of a briefing, read from the stored history: now (the end of the period) and the end of
the period before it.

Nothing is re-computed from the results: counts as at a day are sums of `daily_changes` (the summary
query), a check's failing subjects come from its index in `latest_results` (now) or `result_intervals`
(a past day), devices from the agent registry and the kept reports, MFA from the tenant's daily
observations, accepted risks from the waivers' own dates. "As at day D" is the end of D (UTC); for a
period that ends today or later, it is now.

`gather(...)` returns plain data (dicts and lists) that the HTML template and `--format json` read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.config import CollectorConfig
from collector.reports import areas as posture
from collector.reports.areas import AreaMap, Rag, load_area_map
from collector.reports.periods import Period, month_number, quarter_containing
from collector.storage import observations
from collector.storage.models import (
    agents,
    check_catalog,
    daily_changes,
    iso,
    latest_results,
    reports,
    result_intervals,
    subjects,
    waivers,
)
from collector.storage.queries import common
from collector.storage.queries import summary as summary_view
from collector.storage.queries import trends as trend_view

MFA_POLICY = "microsoft365"
MFA_COVERAGE = "mfa-coverage"
MFA_ENFORCED = ("mfa-enforced", "admin-roles-require-mfa")
CLOUD_GROUP = "cloud"
LONG_FAILING_DAYS = 30
STALE_LISTED = 10
_STATUSES = common.STATUSES
_PROVIDERS = re.compile(r"/providers/(.+)$", re.I)
RESOURCE_TYPES = {
    "microsoft.storage/storageaccounts": "Storage accounts",
    "microsoft.network/networksecuritygroups": "Network security groups",
    "microsoft.keyvault/vaults": "Key vaults",
    "microsoft.sql/servers/databases": "SQL databases",
    "microsoft.sql/servers": "SQL servers",
    "subscription": "Subscriptions (Defender plans)",
}


@dataclass(frozen=True)
class Moment:
    """When figures are taken: the end of `day`, or now when the day is today or later."""

    day: dt.date
    at: dt.datetime
    current: bool

    @classmethod
    def of(cls, day: dt.date, now: dt.datetime) -> Moment:
        if day >= now.date():
            # Stored times are whole seconds and figures take what happened before `at`: what happened in
            # this very second (an agent enrolled, a waiver approved just now) belongs to "now" too.
            return cls(now.date(), now.replace(microsecond=0) + dt.timedelta(seconds=1), True)
        return cls(day, common.end_of(day), False)


def resource_type(resource_id: str) -> str:
    """The ARM type of a resource id: /subscriptions/s/.../providers/Microsoft.Sql/servers/a/databases/b
    -> Microsoft.Sql/servers/databases; a bare subscription id -> subscription."""
    match = _PROVIDERS.search(resource_id)
    if not match:
        return "subscription" if resource_id.lower().startswith("/subscriptions/") else "other"
    parts = match.group(1).split("/")
    return "/".join([parts[0], *parts[1::2]])


def resource_type_name(kind: str) -> str:
    return RESOURCE_TYPES.get(kind.lower(), kind)


def catalog(connection: Connection) -> dict[tuple[str, str], Any]:
    return {(row.policy_id, row.check_id): row for row in connection.execute(sa.select(check_catalog))}


def _group_clause(group: str | None) -> bool:
    """Whether cloud subjects (the tenant and Azure resources, group `cloud`) are in scope."""
    return group is None or group == CLOUD_GROUP


# --- counts and trends ---------------------------------------------------------------------------------


def summary_at(connection: Connection, moment: Moment, group: str | None, config: CollectorConfig) -> dict[str, Any]:
    return summary_view.summary(
        connection,
        now=moment.at,
        stale_after=dt.timedelta(hours=config.stale_after_hours),
        as_of=moment.day,
        filters=common.Filters(group=group),
    )


def check_counts_by_day(
    connection: Connection, end: dt.date, group: str | None
) -> list[tuple[dt.date, str, str, str, int]]:
    """(day, policy, check, status, net change) up to `end`, in day order: running sums give each day's
    counts (the same sums the summary as at a date makes)."""
    changes = daily_changes.c
    query = (
        sa.select(changes.day, changes.policy_id, changes.check_id, changes.status, sa.func.sum(changes.delta))
        .where(changes.day <= end)
        .group_by(changes.day, changes.policy_id, changes.check_id, changes.status)
        .order_by(changes.day)
    )
    if group:
        query = query.where(changes.group_name == group)
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in connection.execute(query) if r[4]]


def area_trends(
    rows: Iterable[tuple[dt.date, str, str, str, int]],
    bucket_ends: list[dt.date],
    area_of: Mapping[tuple[str, str], str | None],
) -> dict[str, list[float | None]]:
    """Each area's compliance (percent) at the end of each bucket."""
    running: dict[tuple[str, str, str], int] = defaultdict(int)
    series: dict[str, list[float | None]] = defaultdict(list)
    keys = sorted({a for a in area_of.values() if a})
    pending = list(rows)
    index = 0
    for bucket_end in bucket_ends:
        while index < len(pending) and pending[index][0] <= bucket_end:
            _, policy_id, check_id, status, delta = pending[index]
            running[(policy_id, check_id, status)] += delta
            index += 1
        totals: dict[str, list[int]] = {key: [0, 0] for key in keys}
        for (policy_id, check_id, status), count in running.items():
            key = area_of.get((policy_id, check_id))
            if key and status in ("pass", "fail"):
                totals[key][0 if status == "pass" else 1] += count
        for key in keys:
            passed, failed = totals[key]
            series[key].append(None if passed + failed == 0 else round(100.0 * passed / (passed + failed), 1))
    return dict(series)


# --- failing checks ------------------------------------------------------------------------------------


def failing_since(
    connection: Connection, policy_id: str, check_id: str, moment: Moment, group: str | None
) -> dict[str, Any]:
    """When the longest-failing subject of a check started failing, and how many have failed for more
    than LONG_FAILING_DAYS, from the check's index (now) or its history (a past day)."""
    cut = moment.at - dt.timedelta(days=LONG_FAILING_DAYS)
    if moment.current:
        latest = latest_results.c
        base = sa.select(sa.func.min(latest.since), sa.func.count()).where(
            latest.policy_id == policy_id, latest.check_id == check_id, latest.status == "fail"
        )
        long = sa.select(sa.func.count()).where(
            latest.policy_id == policy_id, latest.check_id == check_id, latest.status == "fail", latest.since < cut
        )
        if group:
            base = base.join(subjects, subjects.c.id == latest.subject_id).where(subjects.c.group_name == group)
            long = long.join(subjects, subjects.c.id == latest.subject_id).where(subjects.c.group_name == group)
        else:
            base, long = base.select_from(latest_results), long.select_from(latest_results)
    else:
        intervals = result_intervals.c
        condition = (
            intervals.policy_id == policy_id,
            intervals.check_id == check_id,
            intervals.status == "fail",
            intervals.valid_from < moment.at,
            sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment.at),
        )
        base = sa.select(sa.func.min(intervals.valid_from), sa.func.count()).where(*condition)
        long = sa.select(sa.func.count()).where(*condition, intervals.valid_from < cut)
        if group:
            base = base.join(subjects, subjects.c.id == intervals.subject_id).where(subjects.c.group_name == group)
            long = long.join(subjects, subjects.c.id == intervals.subject_id).where(subjects.c.group_name == group)
        else:
            base, long = base.select_from(result_intervals), long.select_from(result_intervals)
    oldest, _count = connection.execute(base).one()
    over = connection.execute(long).scalar_one()
    days = None if oldest is None else max(0, (moment.at - oldest).days)
    return {"oldest_since": iso(oldest), "longest_days": days, f"over_{LONG_FAILING_DAYS}_days": int(over)}


# --- devices -------------------------------------------------------------------------------------------


def devices(
    connection: Connection, moment: Moment, stale_after: dt.timedelta, group: str | None, period_start: dt.date
) -> dict[str, Any]:
    """Enrolled hosts (not revoked by then), those that sent a report within `stale_after` before the
    moment (reporting), those that never sent one (never seen), the rest (stale), and the revoked."""
    at, window = moment.at, moment.at - stale_after
    a = agents.c

    def scoped(query: Any) -> Any:
        return query.where(a.group_name == group) if group else query

    count = sa.select(sa.func.count()).select_from(agents)
    enrolled_by = connection.execute(scoped(count.where(a.enrolled_at < at))).scalar_one()
    revoked_by = connection.execute(scoped(count.where(a.enrolled_at < at, a.revoked_at < at))).scalar_one()
    start = dt.datetime.combine(period_start, dt.time())
    revoked_in_period = connection.execute(scoped(count.where(a.revoked_at >= start, a.revoked_at < at))).scalar_one()
    active = (a.enrolled_at < at, sa.or_(a.revoked_at.is_(None), a.revoked_at >= at))
    joined = sa.select(sa.func.count()).select_from(agents.join(subjects, subjects.c.id == a.subject_id))
    if moment.current:
        reporting = connection.execute(scoped(joined.where(*active, subjects.c.last_report_at >= window))).scalar_one()
        never = connection.execute(scoped(joined.where(*active, subjects.c.last_report_at.is_(None)))).scalar_one()
    else:
        reported = sa.select(sa.func.count(sa.distinct(reports.c.agent_id))).select_from(
            reports.join(agents, a.agent_id == reports.c.agent_id)
        )
        reporting = connection.execute(
            scoped(reported.where(reports.c.received_at >= window, reports.c.received_at < at, *active))
        ).scalar_one()
        earlier = sa.exists().where(reports.c.agent_id == a.agent_id, reports.c.received_at < at)
        never = connection.execute(
            scoped(
                joined.where(
                    *active,
                    sa.or_(subjects.c.last_report_at.is_(None), sa.and_(subjects.c.last_report_at >= at, ~earlier)),
                )
            )
        ).scalar_one()
    enrolled = enrolled_by - revoked_by
    silent: list[dict[str, Any]] = []
    if moment.current:
        rows = connection.execute(
            scoped(
                sa.select(a.hostname, a.agent_id, a.group_name, subjects.c.last_report_at)
                .join(subjects, subjects.c.id == a.subject_id)
                .where(*active, sa.or_(subjects.c.last_report_at < window, subjects.c.last_report_at.is_(None)))
            )
            .order_by(subjects.c.last_report_at.is_not(None), subjects.c.last_report_at, a.hostname)
            .limit(STALE_LISTED)
        )
        silent = [
            {
                "hostname": r.hostname,
                "agent_id": r.agent_id,
                "group": r.group_name,
                "last_report": iso(r.last_report_at),
            }
            for r in rows
        ]
    return {
        "enrolled": enrolled,
        "reporting": reporting,
        "never_seen": never,
        "stale": enrolled - reporting - never,
        "revoked": revoked_by,
        "revoked_in_period": revoked_in_period,
        "stale_after_hours": stale_after.total_seconds() / 3600,
        "not_reporting_listed": silent,
    }


# --- MFA -----------------------------------------------------------------------------------------------


def _tenants(connection: Connection, group: str | None) -> list[Any]:
    if not _group_clause(group):
        return []
    return list(
        connection.execute(
            sa.select(subjects.c.id, subjects.c.ext_id, subjects.c.name)
            .where(subjects.c.kind == "tenant")
            .order_by(subjects.c.name, subjects.c.ext_id)
        )
    )


def _mfa_facts(row: Any) -> dict[str, Any] | None:
    if row is None or not isinstance(row.observed, dict):
        return None
    facts = row.observed
    admins = [
        {"name": str(u.get("display_name") or ""), "sign_in": str(u.get("user_principal_name") or "")}
        for u in facts.get("admins_without_mfa_list") or []
        if isinstance(u, dict)
    ]
    return {
        "day": row.day.isoformat() if hasattr(row, "day") else None,
        "status": row.status,
        "coverage_percent": facts.get("coverage_percent"),
        "members": facts.get("members"),
        "without_mfa": facts.get("not_mfa_capable"),
        "admins": facts.get("admins"),
        "admins_without_mfa": facts.get("admins_without_mfa"),
        "admins_without_mfa_listed": admins,
        "listed_in_full": not facts.get("evidence_truncated", False),
    }


def mfa(
    connection: Connection,
    now: Moment,
    before: Moment | None,
    bucket_ends: list[dt.date],
    group: str | None,
    since: dt.date,
) -> list[dict[str, Any]]:
    """Per tenant: MFA coverage now and before, the rollout over the two periods, who lacks MFA."""
    found = []
    latest_now = {r.subject_id: r for r in observations.as_at(connection, MFA_POLICY, MFA_COVERAGE, now.day)}
    latest_before = (
        {r.subject_id: r for r in observations.as_at(connection, MFA_POLICY, MFA_COVERAGE, before.day)}
        if before
        else {}
    )
    history = observations.series(connection, MFA_POLICY, MFA_COVERAGE, since, now.day)
    for tenant in _tenants(connection, group):
        samples = [r for r in history if r.subject_id == tenant.id]
        curve: list[float | None] = []
        index, value = 0, None
        for bucket_end in bucket_ends:
            while index < len(samples) and samples[index].day <= bucket_end:
                observed = samples[index].observed if isinstance(samples[index].observed, dict) else {}
                value = observed.get("coverage_percent")
                index += 1
            curve.append(value)
        enforcement = {}
        for check_id in MFA_ENFORCED:
            row = connection.execute(
                sa.select(latest_results.c.status, latest_results.c.waived_status).where(
                    latest_results.c.subject_id == tenant.id,
                    latest_results.c.policy_id == MFA_POLICY,
                    latest_results.c.check_id == check_id,
                )
            ).first()
            then = None
            if not now.current:
                then = connection.execute(
                    sa.select(result_intervals.c.status).where(
                        result_intervals.c.subject_id == tenant.id,
                        result_intervals.c.policy_id == MFA_POLICY,
                        result_intervals.c.check_id == check_id,
                        result_intervals.c.valid_from < now.at,
                        sa.or_(result_intervals.c.valid_to.is_(None), result_intervals.c.valid_to >= now.at),
                    )
                ).scalar()
            enforcement[check_id] = (row.status if row else None) if now.current else then
        found.append(
            {
                "tenant": tenant.name or tenant.ext_id,
                "tenant_id": tenant.ext_id,
                "now": _mfa_facts(latest_now.get(tenant.id)),
                "before": _mfa_facts(latest_before.get(tenant.id)),
                "curve": curve,
                "enforced": enforcement,
            }
        )
    return found


# --- cloud ---------------------------------------------------------------------------------------------


def cloud_findings(connection: Connection, moment: Moment, group: str | None) -> dict[str, dict[str, int]]:
    """Per Azure resource type: resources, resources with a failing result, failing and error results."""
    if not _group_clause(group):
        return {}
    if moment.current:
        query = sa.select(subjects.c.ext_id, latest_results.c.status).join(
            latest_results, latest_results.c.subject_id == subjects.c.id
        )
    else:
        intervals = result_intervals.c
        query = (
            sa.select(subjects.c.ext_id, intervals.status)
            .join(result_intervals, intervals.subject_id == subjects.c.id)
            .where(
                intervals.valid_from < moment.at, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment.at)
            )
        )
    by_type: dict[str, dict[str, Any]] = {}
    failing: dict[str, set[str]] = defaultdict(set)
    seen: dict[str, set[str]] = defaultdict(set)
    for ext_id, status in connection.execute(query.where(subjects.c.kind == "cloud_resource")):
        kind = resource_type(ext_id)
        entry = by_type.setdefault(kind, {"fail": 0, "error": 0, "pass": 0})
        if status in entry:
            entry[status] += 1
        seen[kind].add(ext_id)
        if status == "fail":
            failing[kind].add(ext_id)
    return {
        kind: {**entry, "resources": len(seen[kind]), "failing_resources": len(failing[kind])}
        for kind, entry in sorted(by_type.items())
    }


# --- waivers -------------------------------------------------------------------------------------------


def _scope_text(scope: Mapping[str, Any]) -> str:
    parts = []
    for key, label in (("all", "everything"), ("groups", "groups"), ("hosts", "hosts"), ("tenants", "tenants"),
                       ("resources", "resources")):  # fmt: skip
        value = scope.get(key)
        if value is True:
            parts.append(label)
        elif value:
            parts.append(f"{label} {', '.join(map(str, value))}")
    return "; ".join(parts) or "everything"


def accepted_risks(
    connection: Connection,
    period: Period,
    moment: Moment,
    following: Period,
    titles: Mapping[str, str],
    policies_of: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Waivers in force at the moment (those ending in the next period first), and the period's changes."""
    at, start = moment.at, dt.datetime.combine(period.start, dt.time())
    in_force, started, ended = [], 0, 0
    for row in connection.execute(sa.select(waivers).order_by(waivers.c.expires, waivers.c.id)):
        if row.approved_at is not None and start <= row.approved_at < at:
            started += 1
        if row.closed_at is not None and row.approved_at is not None and start <= row.closed_at < at:
            ended += 1
        active = (
            row.approved_at is not None
            and row.approved_at < at
            and row.expires >= moment.day
            and (row.closed_at is None or row.closed_at >= at)
        )
        if not active:
            continue
        waived = None
        if moment.current:
            waived = connection.execute(
                sa.select(sa.func.count())
                .select_from(latest_results)
                .where(
                    latest_results.c.policy_id.in_(
                        [row.policy_id] if row.policy_id else policies_of.get(row.check_id, [])
                    ),
                    latest_results.c.check_id == row.check_id,
                    latest_results.c.status == "waived",
                    latest_results.c.waiver_id == row.id,
                )
            ).scalar_one()
        in_force.append(
            {
                "id": row.id,
                "check": row.check_id,
                "policy": row.policy_id,
                "title": titles.get(row.check_id, ""),
                "scope": _scope_text(row.scope or {}),
                "owner": row.requested_by,
                "approver": row.approved_by,
                "ticket": row.ticket,
                "expires": row.expires.isoformat(),
                "justification": row.justification,
                "results_waived": waived,
                "ends_next_period": row.expires <= following.end,
            }
        )
    in_force.sort(key=lambda w: (not w["ends_next_period"], w["expires"], w["id"]))
    return {
        "in_force": in_force,
        "ending_next_period": sum(1 for w in in_force if w["ends_next_period"]),
        "approved_in_period": started,
        "ended_in_period": ended,
    }


# --- everything ----------------------------------------------------------------------------------------


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 1)


def gather(
    connection: Connection,
    *,
    period: Period,
    group: str | None,
    config: CollectorConfig,
    now: dt.datetime,
    area_map: AreaMap | None = None,
) -> dict[str, Any]:
    """Every figure of the briefing for `period` (and the period before it), as plain data."""
    if period.start > now.date():
        raise common.QueryError("bad_request", f"the period starts on {period.start.isoformat()}, after today")
    area_map = area_map or load_area_map(config.briefing.areas_file or None)
    thresholds = config.briefing.rag
    stale_after = dt.timedelta(hours=config.stale_after_hours)
    previous, following = period.previous(), period.following()
    end = Moment.of(period.end, now)
    horizon = now.date() - dt.timedelta(days=config.retention_days)
    before = Moment.of(previous.end, now) if previous.end >= horizon else None
    entries = catalog(connection)
    frameworks_of = {key: row.frameworks for key, row in entries.items()}
    titles = {key[1]: row.title for key, row in entries.items()}
    policies_of: dict[str, list[str]] = defaultdict(list)
    for policy_id, check_id in entries:
        policies_of[check_id].append(policy_id)

    summary_now = summary_at(connection, end, group, config)
    summary_before = summary_at(connection, before, group, config) if before else None
    areas_now = posture.check_areas(summary_now["by_check"], frameworks_of, area_map, thresholds)
    areas_before = (
        posture.check_areas(summary_before["by_check"], frameworks_of, area_map, thresholds) if summary_before else {}
    )
    trend_start = previous.start if before else period.start
    # Weeks for short spans, months for longer ones (two quarters: seven points, not twenty-six).
    bucket = "week" if (end.day - trend_start).days <= 120 else "month"
    bucket_ends = trend_view.bucket_ends(bucket, max(trend_start, horizon), end.day)
    area_of: dict[tuple[str, str], str | None] = {}
    for key, entry in entries.items():
        found = area_map.area_of(key[0], key[1], entry.frameworks)
        area_of[key] = found.key if found else None
    trends = area_trends(check_counts_by_day(connection, end.day, group), bucket_ends, area_of)

    devices_now = devices(connection, end, stale_after, group, period.start)
    devices_before = devices(connection, before, stale_after, group, previous.start) if before else None
    risks = accepted_risks(connection, period, end, following, titles, policies_of)
    totals = summary_now["totals"]

    previous_checks = {(c["policy"], c["check"]): c for c in (summary_before or {}).get("by_check", [])}
    sections = []
    for area in area_map.areas:
        section: dict[str, Any] = {
            "key": area.key,
            "kind": area.kind,
            "question": area.question,
            "title": area.title,
            "explains": area.explains,
        }
        if area.kind == "checks":
            status = areas_now[area.key]
            earlier = areas_before.get(area.key)
            section.update(
                rag=status.judgement.rag.value,
                reason=status.judgement.reason,
                compliance=_pct(status.compliance),
                counts=status.counts,
                before_rag=earlier.judgement.rag.value if earlier else None,
                before_compliance=_pct(earlier.compliance) if earlier else None,
                before_counts=earlier.counts if earlier else None,
                trend=trends.get(area.key, [None] * len(bucket_ends)),
                checks=[
                    {
                        "policy": row["policy"],
                        "check": row["check"],
                        "title": row["title"],
                        "severity": row["severity"],
                        "fail": row["fail"],
                        "error": row["error"],
                        "pass": row["pass"],
                        "compliance": _pct(row["compliance"]),
                        "before_fail": previous_checks.get((row["policy"], row["check"]), {}).get("fail"),
                        "before_compliance": _pct(
                            previous_checks.get((row["policy"], row["check"]), {}).get("compliance")
                        ),
                    }
                    for row in status.checks
                ],
            )
        elif area.kind == "devices":
            judged = posture.judge_devices(devices_now["enrolled"], devices_now["reporting"], thresholds)
            earlier_devices = (
                posture.judge_devices(devices_before["enrolled"], devices_before["reporting"], thresholds)
                if devices_before
                else None
            )
            section.update(
                rag=judged.rag.value,
                reason=judged.reason,
                now=devices_now,
                before=devices_before,
                before_rag=earlier_devices.rag.value if earlier_devices else None,
            )
        else:
            judged = posture.judge_waivers(totals["waived"], totals["total"], risks["ending_next_period"], thresholds)
            earlier_rag = None
            if before and summary_before:
                earlier_risks = accepted_risks(connection, previous, before, period, titles, policies_of)
                earlier_totals = summary_before["totals"]
                earlier_rag = posture.judge_waivers(
                    earlier_totals["waived"], earlier_totals["total"], earlier_risks["ending_next_period"], thresholds
                ).rag.value
            section.update(
                rag=judged.rag.value, reason=judged.reason, waived=totals["waived"], before_rag=earlier_rag, **risks
            )
        sections.append(section)

    framework_rows = []
    before_controls = {(c["framework"], c["control"]): c for c in (summary_before or {}).get("by_control", [])}
    now_controls = {(c["framework"], c["control"]): c for c in summary_now["by_control"]}
    for framework in area_map.frameworks:
        seen = [control for (name, control) in now_controls if name == framework.key]
        rows = []
        for control in posture.controls_in_order(framework, seen):
            current = now_controls.get((framework.key, control))
            earlier_control = before_controls.get((framework.key, control))
            rows.append(
                {
                    "control": control,
                    "name": framework.controls.get(control, ""),
                    "covered": current is not None,
                    "compliance": _pct(current["compliance"]) if current else None,
                    "pass": current["pass"] if current else 0,
                    "fail": current["fail"] if current else 0,
                    "error": current["error"] if current else 0,
                    "before_compliance": _pct(earlier_control["compliance"]) if earlier_control else None,
                    "rag": (posture.judge_checks(current, 0, thresholds).rag.value if current else Rag.UNKNOWN.value),
                }
            )
        framework_rows.append({"key": framework.key, "name": framework.name, "controls": rows})

    top = []
    for row in [c for c in summary_now["by_check"] if c["fail"]][: config.briefing.top_failing]:
        earlier_check = previous_checks.get((row["policy"], row["check"]))
        top.append(
            {
                "policy": row["policy"],
                "check": row["check"],
                "title": row["title"],
                "severity": row["severity"],
                "failing": row["fail"],
                "before_failing": earlier_check["fail"] if earlier_check else None,
                "error": row["error"],
                **failing_since(connection, row["policy"], row["check"], end, group),
            }
        )

    not_reporting = devices_now["stale"] + devices_now["never_seen"]
    gaps = []
    if totals["error"]:
        gaps.append(
            f"{totals['error']:,} results are errors (the check could not tell, e.g. no permission to read); "
            "they are not in any percentage."
        )
    if not_reporting:
        gaps.append(
            f"{not_reporting:,} enrolled devices have not reported within {config.stale_after_hours} hours "
            f"({devices_now['never_seen']:,} never): their last results count, or none."
        )
    if not totals["total"]:
        gaps.append("No results are stored for this period.")
    cloud_now = cloud_findings(connection, end, group)
    cloud_before = cloud_findings(connection, before, group) if before else {}
    return {
        "period": {"label": period.label, "long_label": period.long_label, "start": period.start.isoformat(),
                   "end": period.end.isoformat(), "as_at": end.day.isoformat(), "current": end.current},
        "previous": {"label": previous.label, "long_label": previous.long_label, "start": previous.start.isoformat(),
                     "end": previous.end.isoformat(), "known": before is not None},
        "next": {"label": following.label, "end": following.end.isoformat()},
        "group": group,
        "generated_at": iso(now),
        "totals": totals,
        "totals_before": summary_before["totals"] if summary_before else None,
        "bucket": bucket,
        "weeks": [day.isoformat() for day in bucket_ends],
        "areas": sections,
        "mfa": mfa(connection, end, before, bucket_ends, group, horizon),
        "cloud": {
            "now": cloud_now,
            "before": cloud_before,
            "names": {kind: resource_type_name(kind) for kind in {*cloud_now, *cloud_before}},
        },
        "frameworks": framework_rows,
        "top_failing": top,
        "gaps": gaps,
        "thresholds": {
            "green_at_percent": thresholds.green_at_percent,
            "amber_at_percent": thresholds.amber_at_percent,
            "devices_green_at_percent": thresholds.devices_green_at_percent,
        },
    }  # fmt: skip


def area_posture(
    connection: Connection,
    *,
    config: CollectorConfig,
    now: dt.datetime,
    as_of: dt.date | None = None,
    group: str | None = None,
    area_map: AreaMap | None = None,
) -> list[dict[str, Any]]:
    """Each area's question and red/amber/green at one moment (now, or the end of `as_of`), without the
    comparison, trends and charts of a briefing: what the dashboard shows. Stable: key, kind, question,
    title, rag, reason, and for check areas compliance (percent) and counts."""
    area_map = area_map or load_area_map(config.briefing.areas_file or None)
    thresholds = config.briefing.rag
    moment = Moment.of(as_of or now.date(), now)
    entries = catalog(connection)
    summary = summary_at(connection, moment, group, config)
    statuses = posture.check_areas(
        summary["by_check"], {key: row.frameworks for key, row in entries.items()}, area_map, thresholds
    )
    found = []
    for area in area_map.areas:
        item: dict[str, Any] = {"key": area.key, "kind": area.kind, "question": area.question, "title": area.title}
        if area.kind == "checks":
            status = statuses[area.key]
            item.update(
                rag=status.judgement.rag.value,
                reason=status.judgement.reason,
                compliance=_pct(status.compliance),
                counts=status.counts,
            )
        elif area.kind == "devices":
            counted = devices(connection, moment, dt.timedelta(hours=config.stale_after_hours), group, moment.day)
            judged = posture.judge_devices(counted["enrolled"], counted["reporting"], thresholds)
            item.update(rag=judged.rag.value, reason=judged.reason, devices=counted)
        else:
            year_starts = month_number(config.briefing.year_starts)
            quarter = quarter_containing(moment.day, year_starts)
            titles = {key[1]: row.title for key, row in entries.items()}
            policies_of: dict[str, list[str]] = defaultdict(list)
            for policy_id, check_id in entries:
                policies_of[check_id].append(policy_id)
            risks = accepted_risks(connection, quarter, moment, quarter.following(), titles, policies_of)
            totals = summary["totals"]
            judged = posture.judge_waivers(totals["waived"], totals["total"], risks["ending_next_period"], thresholds)
            item.update(rag=judged.rag.value, reason=judged.reason, waivers_in_force=len(risks["in_force"]))
        found.append(item)
    return found
