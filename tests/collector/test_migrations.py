"""The Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from collector.storage import migrate
from collector.storage.engine import make_engine
from collector.storage.models import metadata
from tests.conftest import run_cli


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
