"""Schema migrations (Alembic), from the first table on. `rampart-collector db upgrade` runs them.

On PostgreSQL an advisory lock makes replicas that start together upgrade one after the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collector.storage.engine import write_tx

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration. Kept here so that commands can check the schema without loading Alembic; a test
# checks it is Alembic's head.
SCHEMA_HEAD = "0011"
_MIGRATION_LOCK = 0x52414D50  # "RAMP": one advisory lock id for schema changes


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return SCHEMA_HEAD


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    """Every migration's revision id, oldest first."""
    from alembic.script import ScriptDirectory

    return [
        script.revision for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    ]


def revision_of(connection: Connection) -> str | None:
    """The schema revision, or None for an empty database."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return revision_of(connection)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `revision`; returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = alembic_config()
    with write_tx(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after or ""
