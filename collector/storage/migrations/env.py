"""Alembic environment: migrations run on the connection `collector.storage.migrate` hands over."""

from __future__ import annotations

from alembic import context

from collector.storage.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `rampart-collector db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
