"""Schema migrations (Alembic), from the first table on. `rampart-collector db upgrade` runs them.

On PostgreSQL an advisory lock makes replicas that start together upgrade one after the other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from collector.storage.engine import write_tx

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x52414D50  # "RAMP": one advisory lock id for schema changes


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `revision`; returns (revision before, revision after)."""
    config = alembic_config()
    with write_tx(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after or ""


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
