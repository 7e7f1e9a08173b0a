"""Results that count: assigned checks only, revoked hosts retired, cloud runs recorded.

- `rampart_store_report` (PostgreSQL) is replaced. It no longer writes the check catalogue (what a check is
  now comes from the stored policies, collector/storage/policies.py), it is given only the results that
  count (collector/storage/assignments.py) and checks the `policies` state version the caller judged them
  with (`stale_policies`, nothing written, when it moved on), it reads the agent's revocation again once
  the subject is locked (a revocation committed while it waited for the lock is seen), and a latest row
  `retired` (a revoked host's, a cloud resource that is gone) is counted afresh, as a first result.
- `cloud_runs`: one row per cloud run, with whether it could observe and since when not.
- Existing data: the results of agents revoked before this version are retired as at their revocation
  (their open intervals end then, their counts are taken off that day, their latest rows say `retired`);
  the check catalogue is written again from the newest stored version of each policy. Results stored
  before the upgrade are not judged again against the assignments: their rows stay as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Written out so that this migration stays as it was: models.WAIVER_LOCK_KEY and models.COUNTER_SHARDS.
_WAIVER_LOCK_KEY = 7_291_034_551
_SHARDS = 16
_OLD_SIGNATURE = (
    "rampart_store_report(text, text, text, text, text, bigint, timestamp, text, text, integer, integer, text, "
    "text, bigint, text, text, bytea, json, json, integer)"
)

FUNCTION = f"""
CREATE OR REPLACE FUNCTION rampart_store_report(
    p_agent_id text,
    p_kind text, p_ext_id text, p_name text, p_group text,
    p_waiver_version bigint, p_policy_version bigint,
    p_now timestamp,
    p_report_id text, p_created_at text, p_result_count integer, p_dropped integer,
    p_signed_method text, p_signed_path text, p_signed_timestamp bigint,
    p_content_sha256 text, p_signature text, p_body bytea,
    p_rows json, p_shards integer,
    OUT outcome text, OUT stored integer, OUT changed integer, OUT superseded integer,
    OUT subject_kind text, OUT subject_ext_id text, OUT subject_name text, OUT subject_group text
)
LANGUAGE plpgsql AS $function$
DECLARE
    v_subject subjects%ROWTYPE;
    v_waivers bigint;
    v_policies bigint;
    v_shard integer;
    v_subject_id bigint;
    v_revoked_at timestamp;
    v_closing_ids bigint[];
    v_closing_at timestamp[];
BEGIN
    stored := 0; changed := 0; superseded := 0;
    PERFORM pg_advisory_xact_lock_shared({_WAIVER_LOCK_KEY});
    -- By the agent's key alone: with `revoked_at IS NULL` in the condition, a plan cached for any agent
    -- may walk the index of agents not revoked, all of them.
    SELECT a.subject_id, a.revoked_at INTO v_subject_id, v_revoked_at FROM agents a WHERE a.agent_id = p_agent_id;
    IF NOT FOUND OR v_revoked_at IS NOT NULL THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    SELECT s.* INTO v_subject FROM subjects s WHERE s.id = v_subject_id FOR UPDATE;
    -- Again, now that the subject is locked: a revocation locks it too (history.retire_subject), and one
    -- committed while this waited was not seen by the statement above.
    SELECT a.revoked_at INTO v_revoked_at FROM agents a WHERE a.agent_id = p_agent_id;
    IF v_revoked_at IS NOT NULL THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    subject_kind := v_subject.kind; subject_ext_id := v_subject.ext_id;
    subject_name := v_subject.name; subject_group := v_subject.group_name;
    IF (v_subject.kind, v_subject.ext_id, v_subject.name, v_subject.group_name)
       IS DISTINCT FROM (p_kind, p_ext_id, p_name, p_group) THEN
        outcome := 'stale_subject';
        RETURN;
    END IF;
    SELECT coalesce(max(version) FILTER (WHERE name = 'waivers'), 0),
           coalesce(max(version) FILTER (WHERE name = 'policies'), 0)
      INTO v_waivers, v_policies
      FROM state_versions WHERE name IN ('waivers', 'policies');
    IF v_waivers <> p_waiver_version THEN
        outcome := 'stale_waivers';
        RETURN;
    END IF;
    IF v_policies <> p_policy_version THEN
        outcome := 'stale_policies';
        RETURN;
    END IF;

    UPDATE subjects SET last_seen = p_now, last_report_at = p_now WHERE id = v_subject.id;
    INSERT INTO reports (report_id, agent_id, subject_id, received_at, created_at, result_count, dropped,
                         signed_method, signed_path, signed_timestamp, content_sha256, signature, body_zlib)
    VALUES (p_report_id, p_agent_id, v_subject.id, p_now, p_created_at, p_result_count, p_dropped,
            p_signed_method, p_signed_path, p_signed_timestamp, p_content_sha256, p_signature, p_body)
    ON CONFLICT (report_id) DO NOTHING;
    IF NOT FOUND THEN
        outcome := 'duplicate';
        RETURN;
    END IF;

    v_shard := v_subject.id % p_shards;
    WITH incoming AS (
        SELECT r.*, least(coalesce(r.evaluated_at, p_now), p_now) AS at
          FROM json_to_recordset(p_rows) AS r(
               policy_id text, check_id text, status text, waived_status text, waiver_id text,
               severity text, title text, reason text, observed json, expectation json,
               policy_version text, policy_hash text, evaluated_at timestamp)
    ),
    -- The subject's rows are read by the subject alone (as MATERIALIZED), so that only the indexes that
    -- lead with it can be used, whatever plan is cached: a join by (policy, check) could take a per-check
    -- index and visit that check's rows on every host.
    previous AS MATERIALIZED (
        SELECT policy_id, check_id, status, evaluated_at, since FROM latest_results WHERE subject_id = v_subject.id
    ),
    open_intervals AS MATERIALIZED (
        SELECT id, policy_id, check_id FROM result_intervals WHERE subject_id = v_subject.id AND valid_to IS NULL
    ),
    joined AS (
        -- A retired row is no status to change from: the result is counted afresh.
        SELECT i.*, nullif(p.status, 'retired') AS old_status, p.since AS old_since,
               coalesce(i.at < p.evaluated_at, false) AS late
          FROM incoming i
          LEFT JOIN previous p ON p.policy_id = i.policy_id AND p.check_id = i.check_id
    ),
    kept AS (
        SELECT j.*,
               CASE WHEN j.old_status IS NULL THEN j.at
                    WHEN j.old_status <> j.status THEN greatest(j.at, j.old_since)
                    ELSE j.old_since END AS new_since
          FROM joined j
         WHERE NOT j.late
    ),
    written AS (
        INSERT INTO latest_results AS l (
               subject_id, policy_id, check_id, status, waived_status, waiver_id, severity, title, reason,
               observed, expectation, policy_version, policy_hash, evaluated_at, since, report_id)
        SELECT v_subject.id, k.policy_id, k.check_id, k.status, k.waived_status, k.waiver_id, k.severity,
               k.title, k.reason, k.observed, k.expectation, k.policy_version, k.policy_hash, k.at,
               k.new_since, p_report_id
          FROM kept k
         ORDER BY k.policy_id COLLATE "C", k.check_id COLLATE "C"
        ON CONFLICT (subject_id, policy_id, check_id) DO UPDATE SET
               status = excluded.status, waived_status = excluded.waived_status, waiver_id = excluded.waiver_id,
               severity = excluded.severity, title = excluded.title, reason = excluded.reason,
               observed = excluded.observed, expectation = excluded.expectation,
               policy_version = excluded.policy_version, policy_hash = excluded.policy_hash,
               evaluated_at = excluded.evaluated_at, since = excluded.since, report_id = excluded.report_id
        RETURNING 1
    ),
    changes AS (
        SELECT * FROM kept WHERE old_status IS DISTINCT FROM status
    ),
    opened AS (
        INSERT INTO result_intervals (subject_id, policy_id, check_id, status, policy_hash, valid_from, valid_to,
                                      report_id)
        SELECT v_subject.id, c.policy_id, c.check_id, c.status, c.policy_hash, c.new_since, NULL, p_report_id
          FROM changes c
        RETURNING 1
    ),
    deltas AS (
        SELECT policy_id, check_id, status, new_since::date AS day, 1 AS d FROM changes
        UNION ALL
        SELECT policy_id, check_id, old_status, new_since::date, -1 FROM changes WHERE old_status IS NOT NULL
    ),
    counted AS (
        INSERT INTO status_counts AS sc (shard, group_name, policy_id, check_id, status, count)
        SELECT v_shard, v_subject.group_name, policy_id, check_id, status, sum(d)
          FROM deltas
         GROUP BY policy_id, check_id, status
        HAVING sum(d) <> 0
         ORDER BY policy_id COLLATE "C", check_id COLLATE "C", status COLLATE "C"
        ON CONFLICT (shard, group_name, policy_id, check_id, status) DO UPDATE SET count = sc.count + excluded.count
        RETURNING 1
    ),
    daily AS (
        INSERT INTO daily_changes AS dc (day, shard, group_name, policy_id, check_id, status, delta)
        SELECT day, v_shard, v_subject.group_name, policy_id, check_id, status, sum(d)
          FROM deltas
         GROUP BY day, policy_id, check_id, status
        HAVING sum(d) <> 0
         ORDER BY day, policy_id COLLATE "C", check_id COLLATE "C", status COLLATE "C"
        ON CONFLICT (day, shard, group_name, policy_id, check_id, status)
           DO UPDATE SET delta = dc.delta + excluded.delta
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM changes), (SELECT count(*) FROM joined WHERE late),
           x.closing_ids, x.closing_at
      FROM (SELECT array_agg(o.id) AS closing_ids, array_agg(c.new_since) AS closing_at
              FROM changes c JOIN open_intervals o ON o.policy_id = c.policy_id AND o.check_id = c.check_id
             WHERE c.old_status IS NOT NULL) x
      INTO stored, changed, superseded, v_closing_ids, v_closing_at;

    -- Close the interval each change ended (usually none or one), by its id.
    FOR i IN 1 .. coalesce(array_length(v_closing_ids, 1), 0) LOOP
        UPDATE result_intervals SET valid_to = v_closing_at[i] WHERE id = v_closing_ids[i];
    END LOOP;
    outcome := 'stored';
END
$function$
"""


def upgrade() -> None:
    op.create_table(
        "cloud_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("stale_after_s", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cloud_runs"),
    )
    op.create_index("ix_cloud_runs_tenant", "cloud_runs", ["tenant_id", "id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_OLD_SIGNATURE}")
        op.execute(FUNCTION)
    _retire_revoked_hosts(bind)
    _catalogue_from_policies(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS rampart_store_report")
        op.execute(_migration_0003().FUNCTION)
    op.drop_index("ix_cloud_runs_tenant", table_name="cloud_runs")
    op.drop_table("cloud_runs")


def _migration_0003() -> Any:
    path = Path(__file__).with_name("0003_store_report_function.py")
    spec = importlib.util.spec_from_file_location("rampart_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _retire_revoked_hosts(bind: sa.Connection) -> None:
    """As collector/storage/history.retire does at each revocation from now on (written out here)."""
    rows = bind.execute(
        sa.text(
            "SELECT l.subject_id, s.group_name, l.policy_id, l.check_id, l.status, a.revoked_at "
            "FROM latest_results l JOIN agents a ON a.subject_id = l.subject_id "
            "JOIN subjects s ON s.id = l.subject_id "
            "WHERE a.revoked_at IS NOT NULL AND l.status <> 'retired'"
        ).columns(revoked_at=sa.DateTime())
    ).all()
    if not rows:
        return
    counts: dict[tuple[int, str, str, str, str], int] = defaultdict(int)
    daily: dict[tuple[Any, int, str, str, str, str], int] = defaultdict(int)
    for row in rows:
        shard = row.subject_id % _SHARDS
        counts[(shard, row.group_name, row.policy_id, row.check_id, row.status)] -= 1
        daily[(row.revoked_at.date(), shard, row.group_name, row.policy_id, row.check_id, row.status)] -= 1
    bind.execute(
        sa.text(
            "INSERT INTO status_counts (shard, group_name, policy_id, check_id, status, count) "
            "VALUES (:shard, :group_name, :policy_id, :check_id, :status, :n) "
            "ON CONFLICT (shard, group_name, policy_id, check_id, status) "
            "DO UPDATE SET count = status_counts.count + excluded.count"
        ),
        [
            {"shard": k[0], "group_name": k[1], "policy_id": k[2], "check_id": k[3], "status": k[4], "n": n}
            for k, n in sorted(counts.items())
        ],
    )
    bind.execute(
        sa.text(
            "INSERT INTO daily_changes (day, shard, group_name, policy_id, check_id, status, delta) "
            "VALUES (:day, :shard, :group_name, :policy_id, :check_id, :status, :n) "
            "ON CONFLICT (day, shard, group_name, policy_id, check_id, status) "
            "DO UPDATE SET delta = daily_changes.delta + excluded.delta"
        ).bindparams(sa.bindparam("day", type_=sa.Date())),
        [
            {
                "day": k[0],
                "shard": k[1],
                "group_name": k[2],
                "policy_id": k[3],
                "check_id": k[4],
                "status": k[5],
                "n": n,
            }
            for k, n in sorted(daily.items())
        ],
    )
    subjects = sorted({(row.subject_id, row.revoked_at) for row in rows})
    at = sa.bindparam("at", type_=sa.DateTime())
    bind.execute(
        sa.text(
            "UPDATE result_intervals SET valid_to = :at WHERE subject_id = :subject_id AND valid_to IS NULL"
        ).bindparams(at),
        [{"subject_id": subject_id, "at": revoked_at} for subject_id, revoked_at in subjects],
    )
    bind.execute(
        sa.text(
            "UPDATE latest_results SET status = 'retired', waived_status = NULL, waiver_id = NULL, since = :at "
            "WHERE subject_id = :subject_id AND status <> 'retired'"
        ).bindparams(at),
        [{"subject_id": subject_id, "at": revoked_at} for subject_id, revoked_at in subjects],
    )


def _catalogue_from_policies(bind: sa.Connection) -> None:
    """What each check of a stored policy is, from the newest stored version of it."""
    stored = sa.table(
        "policies",
        sa.column("id", sa.Integer()),
        sa.column("policy_id", sa.String()),
        sa.column("version", sa.String()),
        sa.column("sha256", sa.String()),
        sa.column("document", sa.JSON()),
        sa.column("added_at", sa.DateTime()),
    )
    newest = sa.select(sa.func.max(stored.c.id)).group_by(stored.c.policy_id)
    catalogue = []
    for row in bind.execute(sa.select(stored).where(stored.c.id.in_(newest)).order_by(stored.c.policy_id)):
        for check in row.document.get("checks", []):
            catalogue.append(
                {
                    "policy_id": row.policy_id,
                    "check_id": str(check["id"]),
                    "title": str(check.get("title") or ""),
                    "severity": str(check.get("severity") or ""),
                    "weight": check.get("weight"),
                    "frameworks": check.get("frameworks") or {},
                    "policy_version": row.version,
                    "policy_hash": row.sha256,
                    "updated_at": row.added_at,
                }
            )
    if not catalogue:
        return
    table = sa.table(
        "check_catalog",
        *(sa.column(name) for name in ("policy_id", "check_id", "title", "severity", "weight", "policy_version")),
        sa.column("policy_hash"),
        sa.column("frameworks", sa.JSON()),
        sa.column("updated_at", sa.DateTime()),
    )
    keys = {(entry["policy_id"], entry["check_id"]) for entry in catalogue}
    for policy_id, check_id in sorted(keys):
        bind.execute(table.delete().where(table.c.policy_id == policy_id, table.c.check_id == check_id))
    bind.execute(table.insert(), catalogue)
