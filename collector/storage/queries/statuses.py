"""The one source of statuses for every view, now or as at the end of a day.

Counts: now, the striped counters (`status_counts`); as at day D, the newest counter snapshot at or
before D plus the daily changes after it up to D (collector/storage/snapshots.py keeps the snapshots),
so the cost follows the days since that snapshot (a week at most), not the days of history kept.

Per subject: now, the latest rows; as at day D, the history intervals open at the end of D.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from collector.storage.models import count_snapshots, daily_changes, latest_results, result_intervals, status_counts
from collector.storage.queries.common import STATUSES, Filters, empty_counts, end_of
from collector.storage.snapshots import snapshot_on_or_before

CountKey = tuple[str, str, str, str]  # (group, policy, check, status)


def _filtered(query: Any, table: sa.Table, filters: Filters, check_id: str | None) -> Any:
    if filters.group:
        query = query.where(table.c.group_name == filters.group)
    if filters.policy:
        query = query.where(table.c.policy_id == filters.policy)
    if check_id:
        query = query.where(table.c.check_id == check_id)
    return query


def count_rows(
    connection: Connection, as_of: dt.date | None, filters: Filters, check_id: str | None = None
) -> dict[CountKey, int]:
    """(group, policy, check, status) -> subjects in that status, now or at the end of `as_of` (no zeros)."""
    totals: dict[CountKey, int] = defaultdict(int)
    parts: list[tuple[sa.Table, Any, ColumnElement[bool] | None]]
    if as_of is None:
        parts = [(status_counts, status_counts.c.count, None)]
    else:
        base = snapshot_on_or_before(connection, as_of)
        changes = daily_changes.c.day <= as_of
        if base is not None:
            changes = sa.and_(changes, daily_changes.c.day > base)
        parts = [(daily_changes, daily_changes.c.delta, changes)]
        if base is not None:
            parts.append((count_snapshots, count_snapshots.c.count, count_snapshots.c.day == base))
    for table, value, condition in parts:
        columns = (table.c.group_name, table.c.policy_id, table.c.check_id, table.c.status)
        query = sa.select(*columns, sa.func.sum(value).label("n")).group_by(*columns)
        if condition is not None:
            query = query.where(condition)
        for row in connection.execute(_filtered(query, table, filters, check_id)):
            totals[(row.group_name, row.policy_id, row.check_id, row.status)] += int(row.n or 0)
    return {key: n for key, n in totals.items() if n}


def opening_and_changes(
    connection: Connection, start: dt.date, end: dt.date, filters: Filters, check_id: str | None
) -> tuple[dict[str, int], list[tuple[dt.date, str, int]]]:
    """For a trend from `start` to `end`: the counts by status at the newest snapshot at or before `start`
    (zero without one), and the changes by (day, status) after that snapshot up to `end`, in day order."""
    opening = empty_counts()
    base = snapshot_on_or_before(connection, start)
    if base is not None:
        snap = count_snapshots.c
        opening_query = (
            sa.select(snap.status, sa.func.sum(snap.count).label("n")).where(snap.day == base).group_by(snap.status)
        )
        for row in connection.execute(_filtered(opening_query, count_snapshots, filters, check_id)):
            if row.status in opening:
                opening[row.status] += int(row.n)
    changes = daily_changes.c
    query = (
        sa.select(changes.day, changes.status, sa.func.sum(changes.delta).label("n"))
        .where(changes.day <= end)
        .group_by(changes.day, changes.status)
        .order_by(changes.day)
    )
    if base is not None:
        query = query.where(changes.day > base)
    rows = [
        (row.day, row.status, int(row.n))
        for row in connection.execute(_filtered(query, daily_changes, filters, check_id))
    ]
    return opening, rows


@dataclass(frozen=True)
class Held:
    """The statuses subjects held now (the latest rows) or at a moment (the intervals open then), with the
    same names either way; `conditions` select what was held (none for now)."""

    table: sa.Table
    subject_id: ColumnElement[Any]
    policy_id: ColumnElement[Any]
    check_id: ColumnElement[Any]
    status: ColumnElement[Any]
    since: ColumnElement[Any]
    report_id: ColumnElement[Any]
    policy_hash: ColumnElement[Any]
    conditions: list[ColumnElement[bool]] = field(default_factory=list)


def held_at(as_of: dt.date | None) -> Held:
    if as_of is None:
        latest = latest_results.c
        return Held(latest_results, latest.subject_id, latest.policy_id, latest.check_id, latest.status,
                    latest.since, latest.report_id, latest.policy_hash)  # fmt: skip
    moment = end_of(as_of)
    intervals = result_intervals.c
    return Held(
        result_intervals, intervals.subject_id, intervals.policy_id, intervals.check_id, intervals.status,
        intervals.valid_from, intervals.report_id, intervals.policy_hash,
        [intervals.valid_from < moment, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment)],
    )  # fmt: skip


def status_counts_for(
    connection: Connection, subject_ids: list[int], as_of: dt.date | None = None
) -> dict[int, dict[str, int]]:
    """subject id -> its results by status, now or at the end of `as_of` (retired results not counted)."""
    if not subject_ids:
        return {}
    held = held_at(as_of)
    result: dict[int, dict[str, int]] = defaultdict(empty_counts)
    query = (
        sa.select(held.subject_id, held.status, sa.func.count().label("n"))
        .where(held.subject_id.in_(subject_ids), *held.conditions)
        .group_by(held.subject_id, held.status)
    )
    for row in connection.execute(query):
        if row.status in STATUSES:
            result[row.subject_id][row.status] = int(row.n)
    return result
