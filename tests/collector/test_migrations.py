"""The Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from collector.storage import migrate
from collector.storage.engine import make_engine
from collector.storage.models import metadata
from tests.conftest import run_cli

START = dt.datetime(2026, 11, 1, 8, 0)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        assert migrate.current_revision(engine) is None
        assert migrate.upgrade(engine) == (None, migrate.SCHEMA_HEAD)
        assert migrate.upgrade(engine) == (migrate.SCHEMA_HEAD, migrate.SCHEMA_HEAD)  # idempotent
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), metadata
            )
        assert differences == []
    finally:
        engine.dispose()


def test_the_recorded_head_is_alembics_head() -> None:
    assert migrate.alembic_head() == migrate.SCHEMA_HEAD


def test_db_commands(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path}\n", encoding="utf-8")
    assert "(run db upgrade)" in run_cli("rampart-collector", "--config", str(config), "db", "current").stdout
    upgraded = run_cli("rampart-collector", "--config", str(config), "db", "upgrade")
    assert upgraded.returncode == 0 and f"(empty) -> {migrate.SCHEMA_HEAD}" in upgraded.stdout
    again = run_cli("rampart-collector", "--config", str(config), "db", "upgrade")
    assert f"schema {migrate.SCHEMA_HEAD} is current" in again.stdout
    assert (
        '"up_to_date": true'
        in run_cli("rampart-collector", "--config", str(config), "db", "current", "--format", "json").stdout
    )


def test_0005_retires_the_results_of_agents_revoked_before_it_and_rebuilds_the_catalogue(database_url: str) -> None:
    """Data from a 0004 collector: a host revoked with results still counted, a catalogue an agent wrote."""
    from collector.storage import models
    from collector.storage.engine import write_tx
    from tests.support.policies import FLEET_POLICY

    engine = make_engine(database_url, pool_size=1)
    revoked_at = dt.datetime(2026, 11, 10, 9, 30)
    try:
        migrate.upgrade(engine, "0004")
        with write_tx(engine) as connection:
            for subject_id, agent_id, revoked in ((1, "ag-kept", None), (2, "ag-revoked", revoked_at)):
                connection.execute(
                    models.subjects.insert().values(
                        id=subject_id, kind="host", ext_id=agent_id, name=agent_id, group_name="g",
                        first_seen=START, last_seen=START,
                    )
                )  # fmt: skip
                connection.execute(
                    models.agents.insert().values(
                        agent_id=agent_id, subject_id=subject_id, public_key="k", group_name="g",
                        enrolled_at=START, revoked_at=revoked, host_facts={},
                    )
                )  # fmt: skip
                for check, status in (("c00", "fail"), ("c01", "pass")):
                    connection.execute(
                        models.latest_results.insert().values(
                            subject_id=subject_id, policy_id=FLEET_POLICY.id, check_id=check, status=status,
                            severity="info", title="rewritten", policy_version="1.0.0",
                            policy_hash=FLEET_POLICY.sha256, evaluated_at=START, since=START,
                        )
                    )  # fmt: skip
                    connection.execute(
                        models.result_intervals.insert().values(
                            subject_id=subject_id, policy_id=FLEET_POLICY.id, check_id=check, status=status,
                            policy_hash=FLEET_POLICY.sha256, valid_from=START,
                        )
                    )  # fmt: skip
                    key = {"shard": subject_id % 16, "group_name": "g", "policy_id": FLEET_POLICY.id,
                           "check_id": check, "status": status}  # fmt: skip
                    connection.execute(models.status_counts.insert().values(**key, count=1))
                    connection.execute(models.daily_changes.insert().values(**key, day=START.date(), delta=1))
            connection.execute(
                models.policies.insert().values(
                    policy_id=FLEET_POLICY.id, version=FLEET_POLICY.version, sha256=FLEET_POLICY.sha256,
                    title="t", document=FLEET_POLICY.document, added_at=START, added_by="t",
                )
            )  # fmt: skip
            connection.execute(
                models.check_catalog.insert().values(
                    policy_id=FLEET_POLICY.id, check_id="c00", title="rewritten", severity="info", weight=0.0,
                    frameworks={}, policy_version="9", policy_hash="e" * 64, updated_at=START,
                )
            )  # fmt: skip
        migrate.upgrade(engine)
        with engine.connect() as connection:
            counts = dict(
                connection.execute(
                    sa.select(models.status_counts.c.status, sa.func.sum(models.status_counts.c.count)).group_by(
                        models.status_counts.c.status
                    )
                ).all()
            )
            on_revocation_day = connection.execute(
                sa.select(sa.func.sum(models.daily_changes.c.delta)).where(
                    models.daily_changes.c.day == revoked_at.date()
                )
            ).scalar()
            latest = dict(
                connection.execute(
                    sa.select(models.latest_results.c.subject_id, models.latest_results.c.status).where(
                        models.latest_results.c.check_id == "c00"
                    )
                ).all()
            )
            open_ends = connection.execute(
                sa.select(models.result_intervals.c.subject_id, models.result_intervals.c.valid_to)
            ).all()
            catalogue = connection.execute(
                sa.select(models.check_catalog).where(models.check_catalog.c.check_id == "c00")
            ).one()
        assert counts == {"fail": 1, "pass": 1} and on_revocation_day == -2
        assert latest == {1: "fail", 2: "retired"}
        assert sorted((s, v) for s, v in open_ends) == [(1, None), (1, None), (2, revoked_at), (2, revoked_at)]
        assert (catalogue.title, catalogue.severity, catalogue.weight, catalogue.policy_hash) == (
            "Check c00",
            "medium",
            None,
            FLEET_POLICY.sha256,
        )
    finally:
        engine.dispose()
