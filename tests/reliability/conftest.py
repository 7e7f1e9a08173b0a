"""Fixtures of the fault and soak scenarios: the figures each writes, a private PostgreSQL of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.figures import figures, pytest_runtest_makereport  # noqa: F401 - fixture and hook
from tests.reliability.pgserver import PostgresUnavailable, PrivatePostgres
from tests.support.databases import temporary_database


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this session's own (started once), which scenarios may restart."""
    try:
        server = PrivatePostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no private PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_pg_url(private_pg: PrivatePostgres) -> Iterator[str]:
    """A fresh database on the private server (dropped afterwards)."""
    with temporary_database(private_pg.url, "rampart_rel") as url:
        yield url
