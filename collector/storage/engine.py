"""Database engines and transactions for SQLite (the default) and PostgreSQL (for scale and replicas).

SQLite runs in WAL mode with full fsync, so an acknowledged report survives a power cut. Write
transactions on SQLite start with BEGIN IMMEDIATE: the write lock is taken up front, so two writers
queue on the busy timeout instead of failing when a reader upgrades to a writer.
Write transactions are retried when PostgreSQL reports a deadlock or serialization failure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRYABLE_PG_STATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_WRITE_OPTION = "rampart_write"


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, pool_size: int = 8, *, pre_ping: bool = True, custom_plans: bool = True) -> Engine:
    """`pre_ping` and `custom_plans` are for PostgreSQL: a ping before each checkout finds a dropped
    connection (for callers that cannot retry); custom plans suit the bulk statements (see below)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json_serializer
        )
        _configure_sqlite(engine)
        return engine
    engine = sa.create_engine(
        url,
        json_serializer=_json_serializer,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )
    if custom_plans:
        _configure_postgresql(engine)
    return engine


def _json_serializer(value: Any) -> str:
    """JSON columns: the text the agent sent, when the typed decoder kept it (msgspec.Raw), else json.dumps
    (the same text collector/storage/digest.py hashes)."""
    if isinstance(value, msgspec.Raw):
        return bytes(value).decode()
    return json.dumps(value)


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares statements it sees often; a generic plan for the bulk statements (whose row
        # counts come in arrays) can pick a per-check index scan over the open-interval index. Plan each
        # execution for its actual parameters instead: a fraction of a millisecond, and never a bad plan.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so that BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed when the block ends, rolled back on error."""
    with engine.connect() as connection:
        connection.execution_options(**{_WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    if state in _RETRYABLE_PG_STATES:
        return True
    return "database is locked" in str(exc.orig)


def run_write(engine: Engine, work: Callable[[Connection], T], attempts: int = 5) -> T:
    """Run `work` in a write transaction, again from the start after a deadlock or lock timeout."""
    for attempt in range(1, attempts + 1):
        try:
            with write_tx(engine) as connection:
                return work(connection)
        except sa.exc.DBAPIError as exc:
            if attempt == attempts or not _retryable(exc):
                raise
            log.warning("transaction retried", extra={"attempt": attempt, "error": type(exc.orig).__name__})
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")
