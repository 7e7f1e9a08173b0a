"""Test databases: SQLite files, and PostgreSQL schemas inside one database per test session.

Several suites share the PostgreSQL server at RAMPART_TEST_PG_URL, so each session CREATEs its own
uniquely named database and DROPs it at the end; each test gets a fresh schema in it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import sqlalchemy as sa

from collector.storage.engine import normalise_url
from tests.support.shared_server import connect


def pg_base_url() -> str | None:
    return os.environ.get("RAMPART_TEST_PG_URL") or None


def _with_database(url: str, name: str) -> str:
    return sa.engine.make_url(normalise_url(url)).set(database=name).render_as_string(hide_password=False)


@contextmanager
def session_database() -> Iterator[str]:
    """CREATE a uniquely named database on the test server; DROP it afterwards."""
    base = pg_base_url()
    assert base, "RAMPART_TEST_PG_URL is not set"
    with temporary_database(base, "rampart_test") as url:
        yield url


@contextmanager
def temporary_database(base: str, prefix: str) -> Iterator[str]:
    """CREATE a uniquely named database on the server of `base`; DROP it (closing its connections) after."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with connect(admin, base) as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(base, name)
    finally:
        with connect(admin, base) as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """A new empty schema; the URL returned puts it first on the search path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with connect(admin, database_url) as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with connect(admin, database_url) as connection:
            # A test that left a transaction open would make this wait for ever: fail instead.
            connection.exec_driver_sql("SET lock_timeout = '20s'")
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            # The history partitions' schema (collector/storage/partitions.py), emptied by the line above.
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema}_partitions CASCADE")
        admin.dispose()
