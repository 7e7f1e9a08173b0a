"""Observations: what a tenant-wide check observed, once a day.

Agents' past facts are read back from their signed reports; a cloud run keeps no report, so without
this table the facts behind a tenant's results (MFA coverage, the users without MFA, the administrators
without MFA by name) were known only for now. One row per (subject, policy, check, day), the day's last
run: the briefing draws the MFA rollout curve from them and the evidence pack as at a date takes the
tenant's facts of that day. Retention deletes rows older than retention_days.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("check_id", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=True),
        sa.Column("expectation", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "policy_id", "check_id", "day", name="pk_observations"),
    )


def downgrade() -> None:
    op.drop_table("observations")
