"""PostgreSQL: store an agent's report in one round trip, with the function rampart_store_report.

The Python path (collector/storage/ingest.py) spends most of a report's time passing nine statements
through SQLAlchemy and psycopg and waiting for each answer. This function does the same work inside the
database, called once per report in autocommit, so the call is the transaction: lock the subject, keep
the signed report (a known report_id makes it a no-op), upsert the latest rows and, for statuses that
changed, close and open history intervals and move the striped counters and the day's changes.

What it does not decide: whether a waiver covers a result. The caller judges that with the waivers it
has cached at `p_waiver_version` for the subject it expects (`p_kind` .. `p_group`); when either is out
of date the function writes nothing and answers `stale_waivers` or `stale_subject` (with the subject as
stored), and the caller judges again. A shared advisory lock, taken first, keeps a waiver change (which
takes it exclusively before bumping the version, collector/storage/waivers.py) from running while a
report judged with the old waivers is being stored.

The index on the end of intervals now holds closed intervals only (see upgrade()).

Rows are ordered by their key in byte order (COLLATE "C"), as Python orders them in the other paths,
so two transactions always take counter rows in the same order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# collector.storage.models.WAIVER_LOCK_KEY; written out so that this migration stays as it was.
_WAIVER_LOCK_KEY = 7_291_034_551

FUNCTION = f"""
CREATE OR REPLACE FUNCTION rampart_store_report(
    p_agent_id text,
    p_kind text, p_ext_id text, p_name text, p_group text,
    p_waiver_version bigint,
    p_now timestamp,
    p_report_id text, p_created_at text, p_result_count integer, p_dropped integer,
    p_signed_method text, p_signed_path text, p_signed_timestamp bigint,
    p_content_sha256 text, p_signature text, p_body bytea,
    p_rows json, p_catalog json, p_shards integer,
    OUT outcome text, OUT stored integer, OUT changed integer, OUT superseded integer,
    OUT subject_kind text, OUT subject_ext_id text, OUT subject_name text, OUT subject_group text
)
LANGUAGE plpgsql AS $function$
DECLARE
    v_subject subjects%ROWTYPE;
    v_version bigint;
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
    subject_kind := v_subject.kind; subject_ext_id := v_subject.ext_id;
    subject_name := v_subject.name; subject_group := v_subject.group_name;
    IF (v_subject.kind, v_subject.ext_id, v_subject.name, v_subject.group_name)
       IS DISTINCT FROM (p_kind, p_ext_id, p_name, p_group) THEN
        outcome := 'stale_subject';
        RETURN;
    END IF;
    SELECT coalesce(max(version), 0) INTO v_version FROM state_versions WHERE name = 'waivers';
    IF v_version <> p_waiver_version THEN
        outcome := 'stale_waivers';
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
        SELECT i.*, p.status AS old_status, p.since AS old_since,
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

    IF p_catalog IS NOT NULL THEN
        INSERT INTO check_catalog AS cc (policy_id, check_id, title, severity, weight, frameworks, policy_version,
                                         policy_hash, updated_at)
        SELECT c.policy_id, c.check_id, c.title, c.severity, c.weight, c.frameworks, c.policy_version,
               c.policy_hash, p_now
          FROM json_to_recordset(p_catalog) AS c(
               policy_id text, check_id text, title text, severity text, weight double precision, frameworks json,
               policy_version text, policy_hash text)
         ORDER BY c.policy_id COLLATE "C", c.check_id COLLATE "C"
        ON CONFLICT (policy_id, check_id) DO UPDATE SET
               title = excluded.title, severity = excluded.severity, weight = excluded.weight,
               frameworks = excluded.frameworks, policy_version = excluded.policy_version,
               policy_hash = excluded.policy_hash, updated_at = excluded.updated_at;
    END IF;
    outcome := 'stored';
END
$function$
"""


def upgrade() -> None:
    # Closed intervals only (what retention deletes, by date): an index that also held the open ones
    # matched `valid_to IS NULL`, and a plan cached before the tables were analysed could take it to
    # find one host's open intervals, and read those of every host.
    op.drop_index("ix_result_intervals_valid_to", table_name="result_intervals")
    op.create_index(
        "ix_result_intervals_closed",
        "result_intervals",
        ["valid_to"],
        postgresql_where=sa.text("valid_to IS NOT NULL"),
        sqlite_where=sa.text("valid_to IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS rampart_store_report")
    op.drop_index("ix_result_intervals_closed", table_name="result_intervals")
    op.create_index("ix_result_intervals_valid_to", "result_intervals", ["valid_to"])
