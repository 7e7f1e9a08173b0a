"""Indexes for a large fleet, found by the benchmark at 100,000 hosts x 40 checks.

- result_intervals: a partial index on open intervals. Closing the open interval of a changed check went
  through the per-check index, which grows with the fleet; this one holds one entry per
  (subject, policy, check).
- latest_results: a check's subjects in one status come in `since` order from the index, so a page of
  the longest-failing hosts does not sort every host.
- agents: the hosts list in name order, a page at a time; revoked agents counted without a scan.
- subjects: host and stale counts (by group) from the index alone.
- PostgreSQL: latest_results gets a fill factor of 70, so that rewriting every result on every report can
  stay on its page (a HOT update, without index writes) when the status does not change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_result_intervals_open",
        "result_intervals",
        ["subject_id", "policy_id", "check_id"],
        postgresql_where=sa.text("valid_to IS NULL"),
        sqlite_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index("ix_latest_results_check_status", table_name="latest_results")
    op.create_index(
        "ix_latest_results_check_status_since",
        "latest_results",
        ["policy_id", "check_id", "status", "since", "subject_id"],
    )
    op.create_index("ix_agents_hostname", "agents", ["hostname", "agent_id"])
    op.create_index("ix_agents_revoked_at", "agents", ["revoked_at"])
    op.create_index("ix_subjects_kind_group_seen", "subjects", ["kind", "group_name", "last_seen"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE latest_results SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE latest_results RESET (fillfactor)")
    op.drop_index("ix_subjects_kind_group_seen", table_name="subjects")
    op.drop_index("ix_agents_revoked_at", table_name="agents")
    op.drop_index("ix_agents_hostname", table_name="agents")
    op.drop_index("ix_latest_results_check_status_since", table_name="latest_results")
    op.create_index("ix_latest_results_check_status", "latest_results", ["policy_id", "check_id", "status"])
    op.drop_index("ix_result_intervals_open", table_name="result_intervals")
