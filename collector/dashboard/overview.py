"""The overview page: compliance now, red/amber/green by area (collector/reports/areas.py, the briefing's
areas and thresholds), the trend, the most failing checks, stale agents and waivers expiring soon.

Read from the API's summary, trends and hosts queries; charts from collector/reports/charts.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup
from sqlalchemy.engine import Connection

from collector.config import CollectorConfig
from collector.dashboard import data
from collector.dashboard.figures import drawn, figure
from collector.reports import areas as posture
from collector.reports import charts
from collector.storage.queries import summary as summary_view
from collector.storage.queries import trends as trend_view

TREND_WEEKS = 12
TOP_CHECKS = 10
STALE_SHOWN = 10
EXPIRY_DAYS = 30


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def area_rows(
    connection: Connection,
    config: CollectorConfig,
    summary: dict[str, Any],
    expiring: int,
) -> list[dict[str, Any]]:
    """Each area of the briefing's map, judged now: checks areas from the summary's counts, the devices
    area from the host counts, the accepted-risks area from the waived share and the waivers ending soon."""
    area_map = posture.load_area_map(config.briefing.areas_file or None)
    thresholds = config.briefing.rag
    frameworks_of = {key: row.frameworks for key, row in data.checks_with_texts(connection).items()}
    judged = posture.check_areas(summary["by_check"], frameworks_of, area_map, thresholds)
    hosts = summary["hosts"]
    rows = []
    for area in area_map.areas:
        if area.kind == "checks" and area.key in judged:
            status = judged[area.key]
            rows.append(
                {
                    "key": area.key,
                    "title": area.title,
                    "question": area.question,
                    "rag": status.judgement.rag.value,
                    "reason": status.judgement.reason,
                    "compliance": _percent(status.compliance),
                    "fail": status.counts["fail"],
                }
            )
        elif area.kind == "devices":
            reporting = hosts["total"] - (hosts["stale"] or 0)
            judgement = posture.judge_devices(hosts["total"], reporting, thresholds)
            rows.append(
                {
                    "key": area.key,
                    "title": area.title,
                    "question": area.question,
                    "rag": judgement.rag.value,
                    "reason": judgement.reason,
                    "compliance": None if not hosts["total"] else round(100 * reporting / hosts["total"], 1),
                    "fail": hosts["stale"] or 0,
                }
            )
        elif area.kind == "waivers":
            totals = summary["totals"]
            judgement = posture.judge_waivers(totals["waived"], totals["total"], expiring, thresholds)
            rows.append(
                {
                    "key": area.key,
                    "title": area.title,
                    "question": area.question,
                    "rag": judgement.rag.value,
                    "reason": judgement.reason,
                    "compliance": None,
                    "fail": None,
                }
            )
    return rows


def build(
    connection: Connection, config: CollectorConfig, *, now: dt.datetime, stale_after: dt.timedelta
) -> dict[str, Any]:
    summary = summary_view.summary(connection, now=now, stale_after=stale_after)
    today = now.date()
    trend = trend_view.trends(connection, period="week", start=today - dt.timedelta(weeks=TREND_WEEKS - 1), end=today)
    stale = data.host_page(
        connection,
        data.HostQuery(stale=True, sort="seen", per_page=STALE_SHOWN),
        now=now,
        stale_after=stale_after,
    )
    expiring = data.waivers_expiring(connection, today, EXPIRY_DAYS)
    areas = area_rows(connection, config, summary, len(expiring))
    points = trend["points"]
    trend_chart = drawn(
        charts.line_chart,
        "Compliance at the end of each week",
        [dt.date.fromisoformat(p["date"]).strftime("%d %b") for p in points],
        {"Compliance": [_percent(p["compliance"]) for p in points]},
        chart_id="overview-trend",
        notes=("Compliance is passed of passed and failed; errors and waived results are not in it.",),
    )
    charted = [a for a in areas if a["compliance"] is not None]
    area_chart: Markup | None = None
    if charted:
        area_chart = figure(
            drawn(
                charts.bar_chart,
                "Share passing, by area",
                [a["title"] for a in charted],
                {"Passing": [float(a["compliance"]) for a in charted]},
                unit="%",
                chart_id="overview-areas",
                category_heading="Area",
            )
        )
    return {
        "summary": summary,
        "totals": summary["totals"],
        "host_counts": summary["hosts"],
        "areas": areas,
        "trend": points,
        "charts": {"trend": figure(trend_chart), "areas": area_chart},
        "failing": data.with_policy_titles(connection, [c for c in summary["by_check"] if c["fail"]][:TOP_CHECKS]),
        "stale": stale["hosts"],
        "stale_total": stale["total"] or 0,
        "expiring": expiring,
        "expiry_days": EXPIRY_DAYS,
    }
