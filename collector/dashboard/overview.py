"""The overview page: compliance now, RAG by area, the trend, top failing checks, stale agents, waivers
expiring soon. Read from the API's summary, trends and hosts queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from collector.config import CollectorConfig
from collector.dashboard import data
from collector.storage import queries

TREND_WEEKS = 12
TOP_CHECKS = 10
STALE_SHOWN = 10
EXPIRY_DAYS = 30


def rag_of(compliance: float | None, green: float = 0.95, amber: float = 0.80) -> str:
    if compliance is None:
        return "none"
    return "green" if compliance >= green else "amber" if compliance >= amber else "red"


def build(
    connection: Connection, config: CollectorConfig, *, now: dt.datetime, stale_after: dt.timedelta
) -> dict[str, Any]:
    summary = queries.summary(connection, now=now, stale_after=stale_after)
    today = now.date()
    trend = queries.trends(connection, period="week", start=today - dt.timedelta(weeks=TREND_WEEKS - 1), end=today)
    stale = data.host_page(
        connection,
        data.HostQuery(stale=True, sort="seen", per_page=STALE_SHOWN),
        now=now,
        stale_after=stale_after,
    )
    areas = [
        {"area": row["policy"], "compliance": row["compliance"], "rag": rag_of(row["compliance"]), **row}
        for row in summary["by_policy"]
    ]
    return {
        "summary": summary,
        "totals": summary["totals"],
        "host_counts": summary["hosts"],
        "areas": areas,
        "trend": trend["points"],
        "failing": data.with_policy_titles(connection, [c for c in summary["by_check"] if c["fail"]][:TOP_CHECKS]),
        "stale": stale["hosts"],
        "stale_total": stale["total"],
        "expiring": data.waivers_expiring(connection, today, EXPIRY_DAYS),
        "expiry_days": EXPIRY_DAYS,
        "area_note": "By policy; green at 95% or more, amber at 80% or more, red below",
    }
