"""The raw signed reports by month: `reports.created_on`, and (PostgreSQL) `reports` partitioned on it.

- `created_on`: the day (UTC) the agent made the report (its `created_at`, as collector/storage/ingest.py
  reads it), or the day it was received where the report did not say. Filled here from the rows there are.
- The unique report_id becomes UNIQUE (report_id, created_on), on both databases (one model): a
  partitioned table's unique keys must hold its partition key, and a re-sent report carries the same
  created_at, so it is as strict as before (collector/storage/partitions.py).
- `ix_reports_created_on`: retention deletes by it (what is left of the horizon's month, on PostgreSQL).
- PostgreSQL: `reports` rebuilt as range-partitioned by month on created_on (collector/storage/partitions.py),
  rows copied, primary key (id, created_on), the id sequence kept.

Downgrade: one table again, unique by report_id alone; were two rows stored under one report_id (a
report without created_at cannot be, an agent that re-made a report under an old id could), the first
stored is kept, as the old schema would have.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The shapes PostgreSQL reads exactly as Python's datetime.fromisoformat does; the rest (rare: Rampart's
# agent writes 2026-11-26T10:00:00Z) are read in Python.
_PLAIN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$"
_ZONED = r"(Z|[+-]\d{2}:\d{2})$"
_PG_CREATED_ON = (
    "CASE WHEN created_at = '' THEN received_at::date "
    f"WHEN created_at ~ '{_ZONED}' THEN (created_at::timestamptz AT TIME ZONE 'UTC')::date "
    "ELSE created_at::timestamp::date END"
)


def created_on(created_at: str, received_at: dt.datetime) -> dt.date:
    """What ingest (collector/storage/ingest.py, parse_time) makes of created_at; received_at for a value
    it would not read (none is stored: ingest refuses them)."""
    try:
        parsed = dt.datetime.fromisoformat(created_at)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return received_at.date()
    return parsed.date()


def _fill_in_python(bind: sa.Connection, where: str) -> None:
    query = sa.text(f"SELECT id, created_at, received_at FROM reports WHERE {where}")
    rows = bind.execute(query.columns(id=sa.BigInteger(), created_at=sa.String(), received_at=sa.DateTime())).all()
    if rows:
        bind.execute(
            # As a Date: SQLite keeps it as the text SQLAlchemy writes, which ingest's must equal.
            sa.text("UPDATE reports SET created_on = :on WHERE id = :id").bindparams(
                sa.bindparam("on", type_=sa.Date())
            ),
            [{"id": row[0], "on": created_on(row[1], row[2])} for row in rows],
        )


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("reports", sa.Column("created_on", sa.Date(), nullable=True))
    if bind.dialect.name == "postgresql":
        _fill_in_python(bind, f"created_at <> '' AND created_at !~ '{_PLAIN}'")
        _partition(bind)
    else:
        _fill_in_python(bind, "1 = 1")
        with op.batch_alter_table("reports") as batch:
            batch.alter_column("created_on", existing_type=sa.Date(), nullable=False)
            batch.drop_constraint("uq_reports_report_id", type_="unique")
            batch.create_unique_constraint("uq_reports_report_id_created_on", ["report_id", "created_on"])
    op.create_index("ix_reports_created_on", "reports", ["created_on"])


def _partition(bind: sa.Connection) -> None:
    """Rebuild `reports` partitioned on created_on, rows copied (created_on computed where still empty)."""
    from collector.storage import partitions

    sequence = bind.exec_driver_sql("SELECT pg_get_serial_sequence('reports', 'id')").scalar()
    bind.exec_driver_sql("ALTER TABLE reports RENAME TO reports_unpartitioned")
    columns = list(
        bind.exec_driver_sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'reports_unpartitioned' ORDER BY ordinal_position"
        ).scalars()
    )
    select = ", ".join(f"coalesce(created_on, {_PG_CREATED_ON})" if c == "created_on" else c for c in columns)
    bind.exec_driver_sql(
        "CREATE TABLE reports (LIKE reports_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (created_on)"
    )
    bind.exec_driver_sql("ALTER TABLE reports ALTER COLUMN created_on SET NOT NULL")
    oldest = bind.exec_driver_sql(f"SELECT min({_PG_CREATED_ON}) FROM reports_unpartitioned").scalar()
    this_month = partitions.month_of(dt.datetime.now(dt.UTC).date())
    # As migration 0010: months for the rows there are and the default 400 days kept, none older than two
    # years (a host's clock set to 1970 must not make six hundred months: its report goes to `before`).
    first = min(partitions.month_of(oldest) if oldest else this_month, partitions.add_months(this_month, -13))
    first = max(first, partitions.add_months(this_month, -24))
    partitions.create_layout(bind, "reports", first, partitions.add_months(this_month, partitions.AHEAD_MONTHS))
    bind.exec_driver_sql(f"INSERT INTO reports SELECT {select} FROM reports_unpartitioned")
    bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY reports.id")
    bind.exec_driver_sql("DROP TABLE reports_unpartitioned")
    bind.exec_driver_sql("ALTER TABLE reports ADD CONSTRAINT pk_reports PRIMARY KEY (id, created_on)")
    bind.exec_driver_sql(
        "ALTER TABLE reports ADD CONSTRAINT uq_reports_report_id_created_on UNIQUE (report_id, created_on)"
    )
    op.create_index("ix_reports_agent_id", "reports", ["agent_id"])
    op.create_index("ix_reports_received_at", "reports", ["received_at"])
    bind.exec_driver_sql("ANALYZE reports")


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_reports_created_on", table_name="reports")
    if bind.dialect.name == "postgresql":
        _unpartition(bind)
        return
    bind.exec_driver_sql("DELETE FROM reports WHERE id NOT IN (SELECT min(id) FROM reports GROUP BY report_id)")
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint("uq_reports_report_id_created_on", type_="unique")
        batch.create_unique_constraint("uq_reports_report_id", ["report_id"])
        batch.drop_column("created_on")


def _unpartition(bind: sa.Connection) -> None:
    sequence = bind.exec_driver_sql("SELECT pg_get_serial_sequence('reports', 'id')").scalar()
    bind.exec_driver_sql("CREATE TABLE reports_plain (LIKE reports INCLUDING DEFAULTS)")
    bind.exec_driver_sql(
        "INSERT INTO reports_plain SELECT DISTINCT ON (report_id) * FROM reports ORDER BY report_id, id"
    )
    bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY reports_plain.id")
    bind.exec_driver_sql("DROP TABLE reports")  # and its partitions
    bind.exec_driver_sql("ALTER TABLE reports_plain RENAME TO reports")
    bind.exec_driver_sql("ALTER TABLE reports DROP COLUMN created_on")
    bind.exec_driver_sql("ALTER TABLE reports ADD CONSTRAINT pk_reports PRIMARY KEY (id)")
    bind.exec_driver_sql("ALTER TABLE reports ADD CONSTRAINT uq_reports_report_id UNIQUE (report_id)")
    op.create_index("ix_reports_agent_id", "reports", ["agent_id"])
    op.create_index("ix_reports_received_at", "reports", ["received_at"])
