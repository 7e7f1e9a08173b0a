"""The briefing's check figures: counts as at a day, each area's compliance over time, how long a check
has been failing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.config import CollectorConfig
from collector.reports.figures_base import Moment
from collector.storage.models import count_snapshots, daily_changes, iso, latest_results, result_intervals, subjects
from collector.storage.queries import common
from collector.storage.queries import summary as summary_view
from collector.storage.snapshots import snapshot_on_or_before

LONG_FAILING_DAYS = 30


def summary_at(connection: Connection, moment: Moment, group: str | None, config: CollectorConfig) -> dict[str, Any]:
    return summary_view.summary(
        connection,
        now=moment.at,
        stale_after=dt.timedelta(hours=config.stale_after_hours),
        as_of=moment.day,
        filters=common.Filters(group=group),
    )


def check_counts_by_day(
    connection: Connection, start: dt.date, end: dt.date, group: str | None
) -> list[tuple[dt.date, str, str, str, int]]:
    """(day, policy, check, status, net change) up to `end`, in day order: running sums give each day's
    counts from `start` on (the same sums the summary as at a date makes). The counts at the newest
    snapshot at or before `start` come first, as one change on that day, then the changes after it: the
    rows read grow with the span drawn, not with the days kept."""
    base = snapshot_on_or_before(connection, start)
    opening: list[tuple[dt.date, str, str, str, int]] = []
    if base is not None:
        snap = count_snapshots.c
        opening_query = (
            sa.select(snap.policy_id, snap.check_id, snap.status, sa.func.sum(snap.count))
            .where(snap.day == base)
            .group_by(snap.policy_id, snap.check_id, snap.status)
        )
        if group:
            opening_query = opening_query.where(snap.group_name == group)
        opening = [(base, r[0], r[1], r[2], int(r[3])) for r in connection.execute(opening_query) if r[3]]
    changes = daily_changes.c
    query = (
        sa.select(changes.day, changes.policy_id, changes.check_id, changes.status, sa.func.sum(changes.delta))
        .where(changes.day <= end)
        .group_by(changes.day, changes.policy_id, changes.check_id, changes.status)
        .order_by(changes.day)
    )
    if base is not None:
        query = query.where(changes.day > base)
    if group:
        query = query.where(changes.group_name == group)
    return opening + [(r[0], r[1], r[2], r[3], int(r[4])) for r in connection.execute(query) if r[4]]


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
