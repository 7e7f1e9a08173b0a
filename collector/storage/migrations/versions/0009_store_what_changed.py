"""Store what changed: a digest per latest result, a per-subject mark of the last report; one store pipeline.

- `latest_results.digest`: what the result said (facts, expectation, reason, policy version's hash) in
  8 bytes, compared with the incoming result's: a result whose status, waiver and digest are unchanged
  does not rewrite its row, its history or its counters (collector/storage/ingest.py, plan_results).
- `subjects.last_report_id`, `subjects.last_evaluated_at`: the mark of the subject's last report, always
  written; a latest row that report found unchanged was evaluated at `last_evaluated_at`.
- `rampart_store_report` (migrations 0003 and 0005) is dropped: PostgreSQL stores reports with the same
  Python pipeline as SQLite (collector/storage/fast_ingest.py).
- PostgreSQL: `reports.body_zlib` is stored without PostgreSQL's compression (it is zlib already).

Existing rows: a subject's mark is its newest stored report; the digest is filled for the latest rows
that report wrote (computed here as collector/storage/digest.py does, from the stored JSON text), so that
the next identical result does not rewrite them. Other rows keep no digest: they keep their own time, and
their next result rewrites them once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 5000


def _digest(policy_hash: str, observed: str | None, expectation: str | None, reason: str | None) -> int:
    """collector.storage.digest.result_digest over stored JSON texts; written out so that this migration
    stays as it was (tests/collector/test_store_changes.py checks that the two agree)."""
    parts = (policy_hash, observed or "null", expectation or "null", reason or "")
    hashed = hashlib.blake2b(b"\x1f".join(part.encode() for part in parts), digest_size=8)
    return int.from_bytes(hashed.digest(), "big", signed=True)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("latest_results") as batch:
        batch.add_column(sa.Column("digest", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("last_report_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_evaluated_at", sa.DateTime(), nullable=True))
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS rampart_store_report")
        # The body is zlib already: PostgreSQL's own compression of it (tried on every report over 2 kB)
        # only costs CPU.
        op.execute("ALTER TABLE reports ALTER COLUMN body_zlib SET STORAGE EXTERNAL")
    _fill(bind)


def _fill(bind: sa.Connection) -> None:
    bind.execute(
        sa.text(
            "UPDATE subjects SET last_report_id = (SELECT r.report_id FROM reports r WHERE r.subject_id = subjects.id "
            "ORDER BY r.id DESC LIMIT 1) WHERE kind = 'host'"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE subjects SET last_evaluated_at = (SELECT max(l.evaluated_at) FROM latest_results l "
            "WHERE l.subject_id = subjects.id AND l.report_id = subjects.last_report_id) "
            "WHERE last_report_id IS NOT NULL"
        )
    )
    text = "text" if bind.dialect.name == "postgresql" else "TEXT"
    after: tuple[Any, ...] = (0, "", "")
    while True:
        rows = bind.execute(
            sa.text(
                f"SELECT l.subject_id, l.policy_id, l.check_id, l.policy_hash, CAST(l.observed AS {text}), "
                f"CAST(l.expectation AS {text}), l.reason FROM latest_results l "
                "JOIN subjects s ON s.id = l.subject_id AND l.report_id = s.last_report_id "
                "WHERE (l.subject_id, l.policy_id, l.check_id) > (:s, :p, :c) "
                "ORDER BY l.subject_id, l.policy_id, l.check_id LIMIT :n"
            ),
            {"s": after[0], "p": after[1], "c": after[2], "n": _BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE latest_results SET digest = :d WHERE subject_id = :s AND policy_id = :p AND check_id = :c"),
            [{"d": _digest(r[3], r[4], r[5], r[6]), "s": r[0], "p": r[1], "c": r[2]} for r in rows],
        )
        after = tuple(rows[-1][:3])


def downgrade() -> None:
    # A collector of 0008 stores its PostgreSQL reports with the function of 0005: it comes back.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE reports ALTER COLUMN body_zlib SET STORAGE EXTENDED")
        op.execute(_function_of_0005())
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("last_evaluated_at")
        batch.drop_column("last_report_id")
    with op.batch_alter_table("latest_results") as batch:
        batch.drop_column("digest")


def _function_of_0005() -> str:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0005_results_that_count.py")
    spec = importlib.util.spec_from_file_location("rampart_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)
