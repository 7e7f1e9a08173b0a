"""Recording status changes: history intervals, current counts and daily changes, in one place.

Ingest, waiver approval and waiver expiry all change the status of (subject, policy, check) rows; each
change closes the open interval, opens a new one and moves one unit of count from the old status to the
new one, today and in the day's change log. Counter rows are updated in a fixed order so that concurrent
transactions cannot deadlock on them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from collector.storage.models import COUNTER_SHARDS, daily_changes, result_intervals, status_counts


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


def upsert(connection: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT for the connection's dialect (both accept the same builder calls)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def record_changes(connection: Connection, changes: Sequence[Change]) -> None:
    if not changes:
        return
    closing = [c for c in changes if c.old_status is not None]
    if closing:
        connection.execute(
            result_intervals.update()
            .where(
                result_intervals.c.subject_id == sa.bindparam("b_subject"),
                result_intervals.c.policy_id == sa.bindparam("b_policy"),
                result_intervals.c.check_id == sa.bindparam("b_check"),
                result_intervals.c.valid_to.is_(None),
            )
            .values(valid_to=sa.bindparam("b_at")),
            [
                {"b_subject": c.subject_id, "b_policy": c.policy_id, "b_check": c.check_id, "b_at": c.at}
                for c in closing
            ],
        )
    connection.execute(
        result_intervals.insert(),
        [
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
        ],
    )
    current: dict[tuple[int, str, str, str, str], int] = defaultdict(int)
    daily: dict[tuple[dt.date, int, str, str, str, str], int] = defaultdict(int)
    for c in changes:
        shard = shard_of(c.subject_id)
        current[(shard, c.group, c.policy_id, c.check_id, c.new_status)] += 1
        daily[(c.at.date(), shard, c.group, c.policy_id, c.check_id, c.new_status)] += 1
        if c.old_status is not None:
            current[(shard, c.group, c.policy_id, c.check_id, c.old_status)] -= 1
            daily[(c.at.date(), shard, c.group, c.policy_id, c.check_id, c.old_status)] -= 1
    add_counts(connection, current)
    add_daily(connection, daily)


def add_counts(connection: Connection, deltas: dict[tuple[int, str, str, str, str], int]) -> None:
    rows = [
        {"shard": k[0], "group_name": k[1], "policy_id": k[2], "check_id": k[3], "status": k[4], "count": v}
        for k, v in sorted(deltas.items())
        if v
    ]
    if not rows:
        return
    statement = upsert(connection, status_counts)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["shard", "group_name", "policy_id", "check_id", "status"],
            set_={"count": status_counts.c.count + statement.excluded.count},
        ),
        rows,
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
    statement = upsert(connection, daily_changes)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["day", "shard", "group_name", "policy_id", "check_id", "status"],
            set_={"delta": daily_changes.c.delta + statement.excluded.delta},
        ),
        rows,
    )
