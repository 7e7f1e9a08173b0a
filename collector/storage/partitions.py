"""PostgreSQL: the history tables (migration 0010) and the raw signed reports (0011) partitioned by month,
so that retention drops whole months instead of deleting rows one by one, and queries on a date read only
the months it can be in.

Each table is range-partitioned on its date (`result_intervals` on `valid_to`, when the interval closed;
`daily_changes` and `observations` on `day`; `reports` on `created_on`, the day the agent made it)
into partitions kept in a schema of their own, named after the tables' (`public_partitions`), out of the
way of the tables the models describe:
- `<table>_YYYY_MM`, one per month, created AHEAD_MONTHS ahead by the retention job;
- `<table>_before` (everything older than the first month) and `<table>_after` (everything past the last
  month): a late report dated long ago, or a job that did not run for months, never finds no partition;
- `result_intervals_open`: the open intervals (valid_to empty), as the default partition. Its CHECK
  (valid_to IS NULL) lets PostgreSQL create a month without scanning it. Closing an interval moves its
  row into the month it closed in.

Retention (`drop_before`) drops the months wholly before the horizon and the `before` partition, then
makes a new, empty `before` up to the first month kept; rows of the month the horizon falls in are
deleted as on SQLite. A partition's own unique index on `id` (result_intervals) keeps look-ups by id
cheap; a primary key across partitions must hold the partition key, which `valid_to` (nullable) cannot.

`reports` keeps its unique report_id (a re-sent report is a duplicate, collector/storage/ingest.py) as
UNIQUE (report_id, created_on), and its primary key as (id, created_on): every unique key of a partitioned
table holds the partition key. The agent's spool keeps the body it signed, so a re-send, days or months
later, carries the same created_at, hence the same created_on, the same partition, and hits the same key
(so does a body made again the same day under the same id). Looking a report_id up in every partition
instead would cost each report an index probe per month kept and, with generic plans, a lock on every
partition: about 0.2 ms of PostgreSQL CPU a report (docs/benchmarks.md), of 2 ms for all of it. Only a
report without created_at pays it (ingest.py, fast_ingest.py).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.engine import Connection

AHEAD_MONTHS = 2
# Table -> its partition key and whether that is a timestamp (else a date).
PARTITIONED = {
    "result_intervals": ("valid_to", True),
    "daily_changes": ("day", False),
    "observations": ("day", False),
    "reports": ("created_on", False),
}
_MONTH = re.compile(r"^(?P<table>[a-z_]+)_(?P<year>\d{4})_(?P<month>\d{2})$")


def _schema(connection: Connection) -> str:
    """The partitions' schema: the tables' own (the first on the search path) + `_partitions`."""
    return f"{connection.exec_driver_sql('SELECT current_schema()').scalar()}_partitions"


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def _bound(table: str, month: dt.date) -> str:
    timestamp = PARTITIONED[table][1]
    return f"'{month.isoformat()}{' 00:00:00' if timestamp else ''}'"


def _create_month(connection: Connection, table: str, month: dt.date) -> None:
    name = f"{table}_{month.year:04d}_{month.month:02d}"
    connection.exec_driver_sql(
        f"CREATE TABLE {_schema(connection)}.{name} PARTITION OF {table} "
        f"FOR VALUES FROM ({_bound(table, month)}) TO ({_bound(table, add_months(month, 1))})"
    )
    _index_ids(connection, table, name)


def _index_ids(connection: Connection, table: str, name: str) -> None:
    if table == "result_intervals":
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX ON {_schema(connection)}.{name} (id)")


def months(connection: Connection, table: str) -> list[dt.date]:
    """The monthly partitions of `table`, oldest first."""
    names = connection.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %(parent)s::regclass",
        {"parent": table},
    ).scalars()
    found = []
    for name in names:
        match = _MONTH.match(name)
        if match and match["table"] == table:
            found.append(dt.date(int(match["year"]), int(match["month"]), 1))
    return sorted(found)


def partition_names(connection: Connection, table: str) -> list[str]:
    return sorted(
        connection.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %(parent)s::regclass",
            {"parent": table},
        ).scalars()
    )


def create_layout(connection: Connection, table: str, first: dt.date, last: dt.date) -> None:
    """The partitions of a new, empty partitioned `table`: before `first`, each month to `last`, after."""
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_schema(connection)}")
    connection.exec_driver_sql(
        f"CREATE TABLE {_schema(connection)}.{table}_before PARTITION OF {table} "
        f"FOR VALUES FROM (MINVALUE) TO ({_bound(table, first)})"
    )
    _index_ids(connection, table, f"{table}_before")
    month = first
    while month <= last:
        _create_month(connection, table, month)
        month = add_months(month, 1)
    _create_after(connection, table, month)
    if table == "result_intervals":
        connection.exec_driver_sql(
            f"CREATE TABLE {_schema(connection)}.result_intervals_open PARTITION OF result_intervals DEFAULT"
        )
        connection.exec_driver_sql(
            f"ALTER TABLE {_schema(connection)}.result_intervals_open ADD CONSTRAINT result_intervals_open_only "
            "CHECK (valid_to IS NULL)"
        )
        _index_ids(connection, table, "result_intervals_open")


def _create_after(connection: Connection, table: str, start: dt.date) -> None:
    connection.exec_driver_sql(
        f"CREATE TABLE {_schema(connection)}.{table}_after PARTITION OF {table} "
        f"FOR VALUES FROM ({_bound(table, start)}) TO (MAXVALUE)"
    )
    _index_ids(connection, table, f"{table}_after")


def ensure_ahead(connection: Connection, table: str, today: dt.date) -> int:
    """Create the months up to AHEAD_MONTHS after today's; rows the `after` partition held for them move
    into them. Returns how many months were created."""
    existing = months(connection, table)
    through = add_months(month_of(today), AHEAD_MONTHS)
    last = existing[-1] if existing else add_months(month_of(today), -1)
    if last >= through:
        return 0
    connection.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {_schema(connection)}.{table}_after")
    connection.exec_driver_sql(f"ALTER TABLE {_schema(connection)}.{table}_after RENAME TO {table}_after_old")
    created = 0
    month = add_months(last, 1)
    while month <= through:
        _create_month(connection, table, month)
        month = add_months(month, 1)
        created += 1
    _create_after(connection, table, month)
    connection.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {_schema(connection)}.{table}_after_old")
    connection.exec_driver_sql(f"DROP TABLE {_schema(connection)}.{table}_after_old")
    return created


def drop_before(connection: Connection, table: str, cutoff: dt.date) -> int:
    """Drop the months wholly before `cutoff` (their end at or before it) and the `before` partition, whose
    rows are all older still; a new `before` partition takes their range. Returns the months dropped."""
    existing = months(connection, table)
    old = [month for month in existing if add_months(month, 1) <= cutoff]
    if not old:
        return 0
    kept = [month for month in existing if month not in old]
    first_kept = kept[0] if kept else add_months(old[-1], 1)
    for month in old:
        connection.exec_driver_sql(f"DROP TABLE {_schema(connection)}.{table}_{month.year:04d}_{month.month:02d}")
    connection.exec_driver_sql(f"DROP TABLE {_schema(connection)}.{table}_before")
    connection.exec_driver_sql(
        f"CREATE TABLE {_schema(connection)}.{table}_before PARTITION OF {table} "
        f"FOR VALUES FROM (MINVALUE) TO ({_bound(table, first_kept)})"
    )
    _index_ids(connection, table, f"{table}_before")
    return len(old)


def _work_due(connection: Connection, today: dt.date, cutoffs: dict[str, dt.date]) -> bool:
    through = add_months(month_of(today), AHEAD_MONTHS)
    for table, cutoff in cutoffs.items():
        existing = months(connection, table)
        if not existing or existing[-1] < through or add_months(existing[0], 1) <= cutoff:
            return True
    return False


def maintain(connection: Connection, today: dt.date, horizon: dt.date) -> dict[str, int]:
    """The retention job's work on PostgreSQL: months created ahead, months before the horizon dropped.

    Only when there is some (a month to make or to drop, about once a month): the tables are then locked,
    daily_changes first, and it is folded again, so that a change dated long ago that arrived since the
    job's fold is in the starting balance before its month goes."""
    from collector.storage import snapshots

    # The balance lives on the horizon's eve: a month of daily changes goes once it ends on or before it.
    cutoffs = {
        "result_intervals": horizon,
        "daily_changes": horizon - dt.timedelta(days=1),
        "observations": horizon,
        "reports": horizon,
    }
    outcome = {"partitions_created": 0, "partitions_dropped": 0}
    if not _work_due(connection, today, cutoffs):
        return outcome
    connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")  # never queue ingest behind a long wait
    # Reports first: ingest writes the signed report before the history, so taking them in that order too
    # cannot deadlock with a report being stored.
    connection.exec_driver_sql("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")
    snapshots.lock_changes(connection, "ACCESS EXCLUSIVE")
    snapshots.quiet_triggers(connection)
    snapshots.fold_before(connection, horizon)
    snapshots.quiet_triggers(connection, False)
    for table in PARTITIONED:
        outcome["partitions_created"] += ensure_ahead(connection, table, today)
        outcome["partitions_dropped"] += drop_before(connection, table, cutoffs[table])
    return outcome
