"""Recording status changes: history intervals, current counts and daily changes, in one place.

Ingest, waiver approval and waiver expiry all change the status of (subject, policy, check) rows; each
change closes the open interval, opens a new one and moves one unit of count from the old status to the
new one, today and in the day's change log. Counter rows are updated in a fixed order so that concurrent
transactions cannot deadlock on them.

A result is retired when what it is about stops counting: its agent was revoked, or its cloud resource
is gone from a complete listing. From that instant its open interval is closed (so "as at" any later
date leaves it out, and any earlier date still has it), its unit of count is taken off that day, and its
latest row keeps what was last observed under the status `retired`, which no count or view includes. A
later result for the same (subject, policy, check) starts afresh, as a first result does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.bulk import insert_rows, update_rows, upsert
from collector.storage.models import (
    COUNTER_SHARDS,
    daily_changes,
    latest_results,
    result_intervals,
    status_counts,
    subjects,
)

__all__ = ["RETIRED", "Change", "Retirement", "add_counts", "add_daily", "change_deltas", "record_changes", "retire"]
__all__ += ["opened_intervals", "shard_of"]
__all__ += ["retire_subject", "upsert"]

# The status of a latest row that no longer counts (see the module's docstring).
RETIRED = "retired"


@dataclass(frozen=True)
class Change:
    subject_id: int
    group: str
    policy_id: str
    check_id: str
    old_status: str | None  # None: first result for this (subject, policy, check)
    new_status: str
    at: dt.datetime
    policy_hash: str
    report_id: str | None


def shard_of(subject_id: int) -> int:
    return subject_id % COUNTER_SHARDS


def close_intervals(connection: Connection, closing: Sequence[Change | Retirement]) -> None:
    """End the open interval of each changed (subject, policy, check) at its change time."""
    if not closing:
        return
    subject_ids = {c.subject_id for c in closing}
    if len(subject_ids) == 1:  # ingest: one subject, named as a constant so that its index is used
        update_rows(
            connection,
            result_intervals,
            [{"policy_id": c.policy_id, "check_id": c.check_id, "valid_to": c.at} for c in closing],
            match=("policy_id", "check_id"),
            values=("valid_to",),
            null=("valid_to",),
            same={"subject_id": closing[0].subject_id},
        )
        return
    update_rows(
        connection,
        result_intervals,
        [
            {"subject_id": c.subject_id, "policy_id": c.policy_id, "check_id": c.check_id, "valid_to": c.at}
            for c in closing
        ],
        match=("subject_id", "policy_id", "check_id"),
        values=("valid_to",),
        null=("valid_to",),
    )


def record_changes(connection: Connection, changes: Sequence[Change]) -> None:
    if not changes:
        return
    close_intervals(connection, [c for c in changes if c.old_status is not None])
    insert_rows(connection, result_intervals, opened_intervals(changes))
    current, daily = change_deltas(changes)
    add_counts(connection, current)
    add_daily(connection, daily)


def opened_intervals(changes: Sequence[Change]) -> list[dict[str, Any]]:
    """The history interval each status change opens."""
    return [
        {
            "subject_id": c.subject_id,
            "policy_id": c.policy_id,
            "check_id": c.check_id,
            "status": c.new_status,
            "policy_hash": c.policy_hash,
            "valid_from": c.at,
            "valid_to": None,
            "report_id": c.report_id,
        }
        for c in changes
    ]


CountDeltas = dict[tuple[int, str, str, str, str], int]
DailyDeltas = dict[tuple[dt.date, int, str, str, str, str], int]


def change_deltas(changes: Sequence[Change]) -> tuple[CountDeltas, DailyDeltas]:
    """How status changes move the current counts and the day's changes, by counter key."""
    current: CountDeltas = defaultdict(int)
    daily: DailyDeltas = defaultdict(int)
    for c in changes:
        shard = shard_of(c.subject_id)
        current[(shard, c.group, c.policy_id, c.check_id, c.new_status)] += 1
        daily[(c.at.date(), shard, c.group, c.policy_id, c.check_id, c.new_status)] += 1
        if c.old_status is not None:
            current[(shard, c.group, c.policy_id, c.check_id, c.old_status)] -= 1
            daily[(c.at.date(), shard, c.group, c.policy_id, c.check_id, c.old_status)] -= 1
    return current, daily


@dataclass(frozen=True)
class Retirement:
    """A latest result that stops counting at `at`; `status` is the one it held (and was counted in)."""

    subject_id: int
    group: str
    policy_id: str
    check_id: str
    status: str
    at: dt.datetime


def retire(connection: Connection, retiring: Sequence[Retirement]) -> None:
    """Take these results out of every count from their `at` on (history kept); the caller holds their
    subjects' locks. Results already retired are the caller's to leave out."""
    if not retiring:
        return
    close_intervals(connection, retiring)
    current: dict[tuple[int, str, str, str, str], int] = defaultdict(int)
    daily: dict[tuple[dt.date, int, str, str, str, str], int] = defaultdict(int)
    for r in retiring:
        shard = shard_of(r.subject_id)
        current[(shard, r.group, r.policy_id, r.check_id, r.status)] -= 1
        daily[(r.at.date(), shard, r.group, r.policy_id, r.check_id, r.status)] -= 1
    add_counts(connection, current)
    add_daily(connection, daily)
    update_rows(
        connection,
        latest_results,
        [
            {
                "subject_id": r.subject_id,
                "policy_id": r.policy_id,
                "check_id": r.check_id,
                "status": RETIRED,
                "waived_status": None,
                "waiver_id": None,
                "since": r.at,
            }
            for r in sorted(retiring, key=lambda r: (r.subject_id, r.policy_id, r.check_id))
        ],
        match=("subject_id", "policy_id", "check_id"),
        values=("status", "waived_status", "waiver_id", "since"),
    )


def retire_subject(connection: Connection, subject_id: int, at: dt.datetime) -> int:
    """Retire every counted result of one subject (a revoked agent's host) at `at`; returns how many.

    The subject's row is locked first, as ingest locks it, so that a report being stored meanwhile is
    either committed before (and its results retired here) or finds the agent revoked."""
    group = connection.execute(
        sa.select(subjects.c.group_name).where(subjects.c.id == subject_id).with_for_update()
    ).scalar_one()
    rows = connection.execute(
        sa.select(latest_results.c.policy_id, latest_results.c.check_id, latest_results.c.status)
        .where(latest_results.c.subject_id == subject_id, latest_results.c.status != RETIRED)
        .order_by(latest_results.c.policy_id, latest_results.c.check_id)
        .with_for_update()
    ).all()
    retire(connection, [Retirement(subject_id, group, r.policy_id, r.check_id, r.status, at) for r in rows])
    return len(rows)


def add_counts(connection: Connection, deltas: dict[tuple[int, str, str, str, str], int]) -> None:
    rows = [
        {"shard": k[0], "group_name": k[1], "policy_id": k[2], "check_id": k[3], "status": k[4], "count": v}
        for k, v in sorted(deltas.items())
        if v
    ]
    if not rows:
        return
    insert_rows(
        connection,
        status_counts,
        rows,
        key=("shard", "group_name", "policy_id", "check_id", "status"),
        update=_add_count,
    )


def add_daily(connection: Connection, deltas: dict[tuple[dt.date, int, str, str, str, str], int]) -> None:
    rows = [
        {
            "day": k[0],
            "shard": k[1],
            "group_name": k[2],
            "policy_id": k[3],
            "check_id": k[4],
            "status": k[5],
            "delta": v,
        }
        for k, v in sorted(deltas.items())
        if v
    ]
    if not rows:
        return
    insert_rows(
        connection,
        daily_changes,
        rows,
        key=("day", "shard", "group_name", "policy_id", "check_id", "status"),
        update=_add_delta,
    )


def _add_count(excluded: Any) -> dict[str, Any]:
    return {"count": status_counts.c.count + excluded.count}


def _add_delta(excluded: Any) -> dict[str, Any]:
    return {"delta": daily_changes.c.delta + excluded.delta}
