"""The dashboard: users' passwords and Entra ID links, server-side sessions, sign-in failures, and the
indexes its hosts list pages through.

- users.password_hash (argon2id, PHC string) for local sign-in; users.external_id
  (`entra:<tenant>:<object id>`, unique) ties a user to one Entra ID account.
- dashboard_sessions: one row per signed-in browser, keyed by the SHA-256 of the cookie's secret, with
  the session's CSRF token; sign-out, expiry and disabling the user end it.
- sign_in_failures: refused sign-ins by user name and by address, counted over a window to throttle.
- agents (os, hostname, agent_id) and subjects (kind, last_seen, id): the hosts list filtered by
  operating system in name order, and in order of last contact, read a page at a time from an index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
    op.create_index("ix_users_external_id", "users", ["external_id"], unique=True)
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_dashboard_sessions_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_user_id", "dashboard_sessions", ["user_id"])
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "sign_in_failures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sign_in_failures"),
    )
    op.create_index("ix_sign_in_failures_user_at", "sign_in_failures", ["user_name", "at"])
    op.create_index("ix_sign_in_failures_address_at", "sign_in_failures", ["address", "at"])
    op.create_index("ix_agents_os_hostname", "agents", ["os", "hostname", "agent_id"])
    op.create_index("ix_subjects_kind_seen", "subjects", ["kind", "last_seen", "id"])


def downgrade() -> None:
    op.drop_index("ix_subjects_kind_seen", table_name="subjects")
    op.drop_index("ix_agents_os_hostname", table_name="agents")
    op.drop_index("ix_sign_in_failures_address_at", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_user_at", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_user_id", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_index("ix_users_external_id", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("external_id")
        batch.drop_column("password_hash")
