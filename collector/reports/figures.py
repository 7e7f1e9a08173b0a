"""The figures of a briefing, read from the stored history: now (the end of the period) and the end of
the period before it.

Nothing is re-computed from the results: counts as at a day are sums of `daily_changes` (the summary
query), a check's failing subjects come from its index in `latest_results` (now) or `result_intervals`
(a past day), devices from the agent registry and the kept reports, MFA from the tenant's daily
observations, accepted risks from the waivers' own dates. "As at day D" is the end of D (UTC); for a
period that ends today or later, it is now.

The figures of each question live beside this module (`figures_checks.py`, `figures_devices.py`,
`figures_cloud.py`, `figures_risks.py`, sharing `figures_base.py`); this one puts them together:
`gather(...)` returns plain data (dicts and lists) that the HTML template and `--format json` read.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.engine import Connection

from collector.config import CollectorConfig
from collector.reports import areas as posture
from collector.reports.areas import AreaMap, Rag, load_area_map
from collector.reports.figures_base import Moment, catalog
from collector.reports.figures_checks import area_trends, check_counts_by_day, failing_since, summary_at
from collector.reports.figures_cloud import cloud_findings, mfa, resource_type_name
from collector.reports.figures_devices import devices
from collector.reports.figures_risks import accepted_risks
from collector.reports.periods import Period, month_number, quarter_containing
from collector.storage.models import iso
from collector.storage.queries import common
from collector.storage.queries import trends as trend_view


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
    first_day = max(trend_start, horizon)
    bucket_ends = trend_view.bucket_ends(bucket, first_day, end.day)
    area_of: dict[tuple[str, str], str | None] = {}
    for key, entry in entries.items():
        found = area_map.area_of(key[0], key[1], entry.frameworks)
        area_of[key] = found.key if found else None
    trends = area_trends(check_counts_by_day(connection, first_day, end.day, group), bucket_ends, area_of)

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
