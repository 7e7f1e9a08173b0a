"""Counter snapshots: the counts per (group, policy, check, status) at the end of some days, so that "as at
D" is the newest snapshot at or before D plus the daily changes after it (a week of them at most), however
many days of history are kept.

Which days: the end of each ISO week (Sunday) from the first day kept (the retention horizon) to yesterday,
written by the retention job (`rampart-collector jobs run retention` on demand); its first run after an
upgrade writes every week kept. Before the horizon, retention folds the daily changes into one starting
balance on the horizon's eve (`fold_before`): that row is the snapshot of everything forgotten, so a date
before the first weekly snapshot sums the balance and six days at most.

Exact whatever arrives late: a snapshot is the sum of every daily change up to its day. Ingest writes
changes dated when a result was evaluated, which may be a day already snapshotted (a report queued while
its host was offline); migration 0010's triggers on `daily_changes` add any insert, update or delete on
or before a snapshot's day to that snapshot, in the same transaction. Snapshots are only of days over by
the database's clock, so the triggers skip rows dated today (nearly all ingest writes) in their WHEN.
Folding and compacting move changes without changing any sum on or after the day they land on, so on
PostgreSQL the job quiets the triggers
for them (`quiet_triggers`), and the snapshots older than the horizon, which a fold does change, go.

While snapshots are written or changes folded, `daily_changes` is locked against writers (PostgreSQL SHARE
lock; on SQLite the write transaction is the lock), so no change falls between the sums read and the
triggers.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.bulk import insert_rows
from collector.storage.history import add_daily
from collector.storage.models import count_snapshots, daily_changes, snapshot_days

SNAPSHOT_WEEKDAY = 6  # Sunday, the end of an ISO week
Key = tuple[str, str, str, str]  # (group, policy, check, status)


def snapshot_on_or_before(connection: Connection, day: dt.date) -> dt.date | None:
    found = connection.execute(sa.select(sa.func.max(snapshot_days.c.day)).where(snapshot_days.c.day <= day)).scalar()
    return _as_date(found)


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))  # SQLite's max() of a date column returns its text


def days_due(first: dt.date, yesterday: dt.date) -> list[dt.date]:
    """The snapshot days from `first` (the horizon) to `yesterday`: every Sunday."""
    sunday = first + dt.timedelta(days=(SNAPSHOT_WEEKDAY - first.weekday()) % 7)
    days = []
    while sunday <= yesterday:
        days.append(sunday)
        sunday += dt.timedelta(days=7)
    return days


def lock_changes(connection: Connection, mode: str = "SHARE") -> None:
    """Hold off writers of daily changes until this transaction ends (see the module's docstring)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE daily_changes IN {mode} MODE")


def quiet_triggers(connection: Connection, quiet: bool = True) -> None:
    """PostgreSQL: let this transaction move daily changes without the snapshot triggers (SQLite runs them:
    the moves are net zero there too, only slower)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.set_config("rampart.snapshot_sync", "off" if quiet else "on", True)))


def _snapshot(connection: Connection, day: dt.date) -> dict[Key, int]:
    snap = count_snapshots.c
    rows = connection.execute(
        sa.select(snap.group_name, snap.policy_id, snap.check_id, snap.status, snap.count).where(snap.day == day)
    )
    return {(r.group_name, r.policy_id, r.check_id, r.status): int(r[4]) for r in rows}


def _add_changes(connection: Connection, counts: dict[Key, int], after: dt.date | None, through: dt.date) -> None:
    changes = daily_changes.c
    columns = (changes.group_name, changes.policy_id, changes.check_id, changes.status)
    query = sa.select(*columns, sa.func.sum(changes.delta).label("n")).where(changes.day <= through)
    if after is not None:
        query = query.where(changes.day > after)
    for row in connection.execute(query.group_by(*columns)):
        key = (row.group_name, row.policy_id, row.check_id, row.status)
        counts[key] = counts.get(key, 0) + int(row.n or 0)


def database_today(connection: Connection) -> dt.date:
    """Today (UTC) by the database's clock, which the triggers' WHEN clauses read."""
    if connection.dialect.name == "postgresql":
        value = connection.exec_driver_sql("SELECT (clock_timestamp() AT TIME ZONE 'UTC')::date").scalar()
    else:
        value = connection.exec_driver_sql("SELECT date('now')").scalar()
    found = _as_date(value)
    assert found is not None
    return found


def take_snapshots(connection: Connection, *, first: dt.date, yesterday: dt.date, now: dt.datetime) -> int:
    """Write the snapshots due (see `days_due`) that are not there yet, each from the newest snapshot before
    it plus the changes since; returns how many were written. The caller holds `lock_changes`. Never of a
    day that is not over by the database's clock: the triggers skip rows dated today (migration 0010)."""
    yesterday = min(yesterday, database_today(connection) - dt.timedelta(days=1))
    existing = {_as_date(d) for d in connection.execute(sa.select(snapshot_days.c.day)).scalars()}
    written = 0
    counts: dict[Key, int] | None = None
    counted_to: dt.date | None = None
    for day in days_due(first, yesterday):
        if day in existing:
            counts, counted_to = None, None
            continue
        if counts is None:
            counted_to = snapshot_on_or_before(connection, day)
            counts = {} if counted_to is None else _snapshot(connection, counted_to)
        _add_changes(connection, counts, counted_to, day)
        counted_to = day
        connection.execute(snapshot_days.insert().values(day=day, taken_at=now))
        rows = [
            {"day": day, "group_name": k[0], "policy_id": k[1], "check_id": k[2], "status": k[3], "count": n}
            for k, n in sorted(counts.items())
            if n
        ]
        if rows:
            insert_rows(connection, count_snapshots, rows)
        written += 1
    return written


def forget_before(connection: Connection, horizon: dt.date) -> int:
    """Forget the snapshots before the horizon (a fold changes them); returns how many."""
    old = connection.execute(snapshot_days.delete().where(snapshot_days.c.day < horizon)).rowcount
    connection.execute(count_snapshots.delete().where(count_snapshots.c.day < horizon))
    return int(old)


def fold_before(connection: Connection, horizon: dt.date) -> int:
    """Merge the daily changes of days before the horizon into one starting balance on its eve (shard 0);
    returns the rows folded."""
    return _merge(connection, daily_changes.c.day < horizon, horizon - dt.timedelta(days=1))


def compact_stripes(connection: Connection, *, before: dt.date) -> int:
    """Merge the stripes of past days (before `before`) into shard 0: past days are no longer written
    concurrently, so their stripes only cost reads. Returns the rows merged."""
    return _merge(connection, sa.and_(daily_changes.c.day < before, daily_changes.c.shard != 0), None)


def _merge(connection: Connection, condition: Any, into_day: dt.date | None) -> int:
    """DELETE ... RETURNING then add back, summed, in shard 0 (of `into_day`, else of each day): exact even
    while ingest adds to those rows."""
    removed = connection.execute(
        daily_changes.delete()
        .where(condition)
        .returning(
            daily_changes.c.day,
            daily_changes.c.group_name,
            daily_changes.c.policy_id,
            daily_changes.c.check_id,
            daily_changes.c.status,
            daily_changes.c.delta,
        )
    ).all()
    merged: dict[tuple[dt.date, int, str, str, str, str], int] = defaultdict(int)
    for row in removed:
        merged[(into_day or row.day, 0, row.group_name, row.policy_id, row.check_id, row.status)] += int(row.delta)
    add_daily(connection, merged)
    return len(removed)
