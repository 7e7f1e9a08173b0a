"""The initial schema: registry, reports, results and their history, policies, waivers, users, audit, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _s(length: int) -> sa.String:
    return sa.String(length=length)


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("ext_id", _s(200), nullable=False),
        sa.Column("name", _s(255), nullable=False),
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=True),
        sa.Column("last_report_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subjects"),
        sa.UniqueConstraint("kind", "ext_id", name="uq_subjects_kind_ext_id"),
    )
    op.create_table(
        "agents",
        sa.Column("agent_id", _s(40), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("public_key", _s(64), nullable=False),
        sa.Column("hostname", _s(255), nullable=False),
        sa.Column("os", _s(100), nullable=False),
        sa.Column("os_version", _s(100), nullable=False),
        sa.Column("agent_version", _s(50), nullable=False),
        sa.Column("host_facts", sa.JSON(), nullable=False),
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("token_id", _s(24), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", _s(100), nullable=True),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name="fk_agents_subject_id_subjects"),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agents"),
        sa.UniqueConstraint("subject_id", name="uq_agents_subject_id"),
    )
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", _s(24), nullable=False),
        sa.Column("token_hash", _s(64), nullable=False),
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", _s(100), nullable=False),
        sa.Column("note", _s(255), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_enrollment_tokens_token_hash"),
    )
    op.create_table(
        "reports",
        sa.Column("id", BigId, nullable=False),
        sa.Column("report_id", _s(64), nullable=False),
        sa.Column("agent_id", _s(40), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", _s(40), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("signed_method", _s(8), nullable=False),
        sa.Column("signed_path", _s(100), nullable=False),
        sa.Column("signed_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("content_sha256", _s(64), nullable=False),
        sa.Column("signature", _s(100), nullable=False),
        sa.Column("body_zlib", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("report_id", name="uq_reports_report_id"),
    )
    op.create_index("ix_reports_agent_id", "reports", ["agent_id"])
    op.create_index("ix_reports_received_at", "reports", ["received_at"])
    op.create_table(
        "latest_results",
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("waived_status", _s(16), nullable=True),
        sa.Column("waiver_id", _s(100), nullable=True),
        sa.Column("severity", _s(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=True),
        sa.Column("expectation", sa.JSON(), nullable=True),
        sa.Column("policy_version", _s(50), nullable=False),
        sa.Column("policy_hash", _s(64), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("report_id", _s(64), nullable=True),
        sa.PrimaryKeyConstraint("subject_id", "policy_id", "check_id", name="pk_latest_results"),
    )
    op.create_index("ix_latest_results_check_status", "latest_results", ["policy_id", "check_id", "status"])
    op.create_table(
        "result_intervals",
        sa.Column("id", BigId, nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("policy_hash", _s(64), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column("report_id", _s(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_result_intervals"),
    )
    # "As at T" for one subject, for one check, and the retention sweep.
    op.create_index(
        "ix_result_intervals_subject", "result_intervals", ["subject_id", "policy_id", "check_id", "valid_from"]
    )
    op.create_index("ix_result_intervals_check", "result_intervals", ["policy_id", "check_id", "valid_from"])
    op.create_index("ix_result_intervals_valid_to", "result_intervals", ["valid_to"])
    op.create_table(
        "status_counts",
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shard", "group_name", "policy_id", "check_id", "status", name="pk_status_counts"),
    )
    op.create_table(
        "daily_changes",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "shard", "group_name", "policy_id", "check_id", "status", name="pk_daily_changes"
        ),
    )
    op.create_table(
        "check_catalog",
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", _s(16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("frameworks", sa.JSON(), nullable=False),
        sa.Column("policy_version", _s(50), nullable=False),
        sa.Column("policy_hash", _s(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("policy_id", "check_id", name="pk_check_catalog"),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("version", _s(50), nullable=False),
        sa.Column("sha256", _s(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", _s(255), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", _s(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.UniqueConstraint("sha256", name="uq_policies_sha256"),
    )
    op.create_index("ix_policies_policy_id", "policies", ["policy_id"])
    op.create_table(
        "policy_assignments",
        sa.Column("group_name", _s(100), nullable=False),
        sa.Column("policy_id", _s(100), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_by", _s(100), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "policy_id", name="pk_policy_assignments"),
    )
    op.create_table(
        "waivers",
        sa.Column("id", _s(100), nullable=False),
        sa.Column("check_id", _s(200), nullable=False),
        sa.Column("policy_id", _s(100), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("ticket", _s(100), nullable=False),
        sa.Column("expires", sa.Date(), nullable=False),
        sa.Column("state", _s(16), nullable=False),
        sa.Column("requested_by", _s(100), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("approved_by", _s(100), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", _s(100), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_waivers"),
    )
    op.create_index("ix_waivers_check_id", "waivers", ["check_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _s(100), nullable=False),
        sa.Column("role", _s(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", _s(24), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", _s(64), nullable=False),
        sa.Column("label", _s(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_api_tokens_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", _s(100), nullable=False),
        sa.Column("action", _s(64), nullable=False),
        sa.Column("target", _s(255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "job_schedule",
        sa.Column("name", _s(64), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_schedule"),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", _s(64), nullable=False),
        sa.Column("holder", _s(100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_name", "job_runs", ["name"])
    op.create_table(
        "state_versions",
        sa.Column("name", _s(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_state_versions"),
    )


def downgrade() -> None:
    for name in (
        "state_versions",
        "job_runs",
        "job_schedule",
        "audit_log",
        "api_tokens",
        "users",
        "waivers",
        "policy_assignments",
        "policies",
        "check_catalog",
        "daily_changes",
        "status_counts",
        "result_intervals",
        "latest_results",
        "reports",
        "enrollment_tokens",
        "agents",
        "subjects",
    ):
        op.drop_table(name)
