"""Trends: compliance by day, ISO week or month over a range of days, from the counts at the newest snapshot
before the range and the daily changes across it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from collector.storage.queries.common import (
    MAX_TREND_POINTS,
    NO_FILTERS,
    Filters,
    QueryError,
    check_as_of,
    retention_horizon,
    score,
)
from collector.storage.queries.statuses import opening_and_changes

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
    filters: Filters = NO_FILTERS,
    check_id: str | None = None,
) -> dict[str, Any]:
    ends = bucket_ends(period, start, end)  # refuses more than MAX_TREND_POINTS before building any
    running, rows = opening_and_changes(connection, start, end, filters, check_id)
    points = []
    index = 0
    for bucket_end in ends:
        while index < len(rows) and rows[index][0] <= bucket_end:
            if rows[index][1] in running:
                running[rows[index][1]] += rows[index][2]
            index += 1
        points.append({"date": bucket_end.isoformat(), **score(dict(running))})
    return {
        "period": period,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "filters": {"group": filters.group, "policy": filters.policy, "check": check_id},
        "points": points,
    }
