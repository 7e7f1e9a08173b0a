"""History that stays cheap at scale: counter snapshots, and (PostgreSQL) the history tables by month.

- `snapshot_days` and `count_snapshots`: the counts per (group, policy, check, status) at the end of one
  day a week, written by the retention job (collector/storage/snapshots.py), so "as at a date" sums a week
  of daily changes at most. Triggers on `daily_changes` keep every snapshot equal to the sum of the
  changes up to its day when a change lands on a day already snapshotted (a late report). Snapshots are
  of past days only, so a row dated today (what ingest writes nearly always) skips them in their WHEN
  clause, without a read.
- PostgreSQL: `result_intervals` (by valid_to), `daily_changes` and `observations` (by day) become
  range-partitioned by month (collector/storage/partitions.py), existing rows moved; their indexes are
  rebuilt as they were, and their primary keys where they hold the partition key (result_intervals' id
  is unique per partition instead: its key column valid_to is nullable).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_KEY = (
    "group_name = {row}.group_name AND policy_id = {row}.policy_id AND check_id = {row}.check_id "
    "AND status = {row}.status"
)

# SQLite: one trigger per kind of write. What a row adds (inserted), adds more (updated) or no longer adds
# (deleted) to the sum of changes is added to every snapshot on or after its day, whose row for that count
# is made first if it had none (a count at zero has no row). (No INSERT OR IGNORE: the
# statement that fires a trigger imposes its own conflict policy on the trigger's.)
_SQLITE_ADD = """
INSERT INTO count_snapshots (day, group_name, policy_id, check_id, status, count)
SELECT s.day, {row}.group_name, {row}.policy_id, {row}.check_id, {row}.status, 0
  FROM snapshot_days s WHERE s.day >= {row}.day AND NOT EXISTS (
       SELECT 1 FROM count_snapshots WHERE day = s.day AND {key});
UPDATE count_snapshots SET count = count + ({amount}) WHERE day >= {row}.day AND {key};
"""
_SQLITE_TRIGGERS = {
    "daily_changes_snapshot_insert": (
        "AFTER INSERT ON daily_changes WHEN NEW.day < date('now') AND NEW.delta <> 0 "
        "AND NEW.day <= (SELECT max(day) FROM snapshot_days)",
        _SQLITE_ADD.format(row="NEW", amount="NEW.delta", key=_KEY.format(row="NEW")),
    ),
    "daily_changes_snapshot_update": (
        "AFTER UPDATE OF delta ON daily_changes "
        "WHEN NEW.day < date('now') AND NEW.delta <> OLD.delta AND NEW.day <= (SELECT max(day) FROM snapshot_days)",
        _SQLITE_ADD.format(row="NEW", amount="NEW.delta - OLD.delta", key=_KEY.format(row="NEW")),
    ),
    "daily_changes_snapshot_delete": (
        "AFTER DELETE ON daily_changes WHEN OLD.day < date('now') AND OLD.delta <> 0 "
        "AND OLD.day <= (SELECT max(day) FROM snapshot_days)",
        _SQLITE_ADD.format(row="OLD", amount="-OLD.delta", key=_KEY.format(row="OLD")),
    ),
}

# PostgreSQL: the same, in one function; the retention job quiets it (rampart.snapshot_sync = off) while it
# folds and compacts, moves that change no snapshot it keeps (collector/storage/snapshots.py).
_PG_FUNCTION = """
CREATE FUNCTION rampart_daily_change_to_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_newest date;
BEGIN
    IF current_setting('rampart.snapshot_sync', true) = 'off' THEN
        RETURN NULL;
    END IF;
    SELECT max(day) INTO v_newest FROM snapshot_days;
    IF v_newest IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.day <= v_newest AND OLD.delta <> 0 THEN
        INSERT INTO count_snapshots AS cs (day, group_name, policy_id, check_id, status, count)
        SELECT s.day, OLD.group_name, OLD.policy_id, OLD.check_id, OLD.status, -OLD.delta
          FROM snapshot_days s WHERE s.day >= OLD.day
         ORDER BY s.day
        ON CONFLICT (day, group_name, policy_id, check_id, status) DO UPDATE SET count = cs.count + excluded.count;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.day <= v_newest AND NEW.delta <> 0 THEN
        INSERT INTO count_snapshots AS cs (day, group_name, policy_id, check_id, status, count)
        SELECT s.day, NEW.group_name, NEW.policy_id, NEW.check_id, NEW.status, NEW.delta
          FROM snapshot_days s WHERE s.day >= NEW.day
         ORDER BY s.day
        ON CONFLICT (day, group_name, policy_id, check_id, status) DO UPDATE SET count = cs.count + excluded.count;
    END IF;
    RETURN NULL;
END $$
"""
# Snapshots are only of days before today (UTC, the database's clock: collector/storage/snapshots.py), so a
# row of today, what ingest writes nearly always, cannot touch one: the WHEN clauses skip the function for it.
# clock_timestamp(), not the transaction's start: a transaction begun before midnight that writes after the
# job snapshotted that day must still reach the snapshot.
_PG_TODAY = "(clock_timestamp() AT TIME ZONE 'UTC')::date"
_PG_TRIGGERS = {
    "daily_changes_to_snapshots_insert": f"AFTER INSERT ON daily_changes FOR EACH ROW WHEN (NEW.day < {_PG_TODAY})",
    "daily_changes_to_snapshots_update": (
        f"AFTER UPDATE ON daily_changes FOR EACH ROW WHEN (NEW.day < {_PG_TODAY} OR OLD.day < {_PG_TODAY})"
    ),
    "daily_changes_to_snapshots_delete": f"AFTER DELETE ON daily_changes FOR EACH ROW WHEN (OLD.day < {_PG_TODAY})",
}


# The store function of migration 0003 closes each changed interval by its id alone: on a partitioned table
# that reads every partition (3 ms a statement here, against 0.06 ms). The interval it closes is the open
# one, so saying so (valid_to IS NULL) reads the open partition only. Amended where the function still has
# that line (a later store pipeline may have replaced it), without copying the rest of it here.
_CLOSE_BY_ID = "UPDATE result_intervals SET valid_to = v_closing_at[i] WHERE id = v_closing_ids[i];"
_CLOSE_OPEN_BY_ID = (
    "UPDATE result_intervals SET valid_to = v_closing_at[i] WHERE id = v_closing_ids[i] AND valid_to IS NULL;"
)


def _amend_store_function(bind: sa.Connection, old: str, new: str) -> None:
    definitions = bind.exec_driver_sql(
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
        "WHERE p.proname = 'rampart_store_report' AND pg_function_is_visible(p.oid)"
    ).scalars()
    for definition in list(definitions):
        if old in definition:
            # The driver's own cursor, without parameters: the body's % and := stay as they are.
            cursor = bind.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(definition.replace(old, new))


def upgrade() -> None:
    op.create_table(
        "snapshot_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_snapshot_days"),
    )
    op.create_table(
        "count_snapshots",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("check_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "group_name", "policy_id", "check_id", "status", name="pk_count_snapshots"),
    )
    op.create_index(
        "ix_count_snapshots_count_day", "count_snapshots", ["group_name", "policy_id", "check_id", "status", "day"]
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("result_intervals", "daily_changes", "observations"):
            _partition(bind, table)
        _amend_store_function(bind, _CLOSE_BY_ID, _CLOSE_OPEN_BY_ID)
        op.execute(_PG_FUNCTION)
        for name, when in _PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION rampart_daily_change_to_snapshots()")
    else:
        for name, (when, body) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def _shape(bind: sa.Connection, table: str) -> tuple[list[str], Any, str | None]:
    """What a rebuilt `table` must have again: its index definitions (not its primary key's), its primary
    key (name, definition) and the sequence behind its id."""
    indexes = bind.exec_driver_sql(
        "SELECT indexdef FROM pg_indexes i WHERE schemaname = current_schema() AND tablename = %(t)s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.contype = 'p')",
        {"t": table},
    )
    primary = bind.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %(t)s::regclass "
        "AND contype = 'p'",
        {"t": table},
    ).first()
    sequence = None
    if table == "result_intervals":
        sequence = bind.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table}).scalar()
    return list(indexes.scalars()), primary, sequence


def _partition(bind: sa.Connection, table: str) -> None:
    """Rebuild `table` as a partitioned table with the same columns, defaults, indexes and rows."""
    from collector.storage import partitions

    column, _timestamp = partitions.PARTITIONED[table]
    indexes, primary, sequence = _shape(bind, table)
    found = bind.exec_driver_sql(f"SELECT min({column}), max({column}) FROM {table}").first()
    today = dt.datetime.now(dt.UTC).date()
    this_month = partitions.month_of(today)
    oldest = None if found is None else found[0]
    if isinstance(oldest, dt.datetime):
        oldest = oldest.date()
    # Months for the rows there are and for the default 400 days kept; rows older than two years go to
    # `before` (a host's clock set to 1970 must not make six hundred months).
    first = min(partitions.month_of(oldest or today), partitions.add_months(this_month, -13))
    first = max(first, partitions.add_months(this_month, -24))
    last = partitions.add_months(partitions.month_of(today), partitions.AHEAD_MONTHS)
    bind.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
    bind.exec_driver_sql(
        f"CREATE TABLE {table} (LIKE {table}_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE ({column})"
    )
    partitions.create_layout(bind, table, first, last)
    bind.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {table}_unpartitioned")
    if sequence:
        bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
    bind.exec_driver_sql(f"DROP TABLE {table}_unpartitioned")
    if primary is not None and column in primary[1]:
        bind.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {primary[0]} {primary[1]}")
    for definition in indexes:
        bind.exec_driver_sql(definition)
    bind.exec_driver_sql(f"ANALYZE {table}")


def _unpartition(bind: sa.Connection, table: str) -> None:
    indexes, primary, sequence = _shape(bind, table)
    bind.exec_driver_sql(f"CREATE TABLE {table}_plain (LIKE {table} INCLUDING DEFAULTS)")
    bind.exec_driver_sql(f"INSERT INTO {table}_plain SELECT * FROM {table}")
    if sequence:
        bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {table}_plain.id")
    bind.exec_driver_sql(f"DROP TABLE {table} CASCADE")
    bind.exec_driver_sql(f"ALTER TABLE {table}_plain RENAME TO {table}")
    if table == "result_intervals":
        bind.exec_driver_sql("ALTER TABLE result_intervals ADD CONSTRAINT pk_result_intervals PRIMARY KEY (id)")
    elif primary is not None:
        bind.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {primary[0]} {primary[1]}")
    for definition in indexes:
        bind.exec_driver_sql(definition)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON daily_changes")
        _amend_store_function(bind, _CLOSE_OPEN_BY_ID, _CLOSE_BY_ID)
        op.execute("DROP FUNCTION rampart_daily_change_to_snapshots()")
        for table in ("result_intervals", "daily_changes", "observations"):
            _unpartition(bind, table)
        op.execute(
            f"DROP SCHEMA IF EXISTS {bind.exec_driver_sql('SELECT current_schema()').scalar()}_partitions CASCADE"
        )
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_count_snapshots_count_day", table_name="count_snapshots")
    op.drop_table("count_snapshots")
    op.drop_table("snapshot_days")
