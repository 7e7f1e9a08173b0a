"""Fixtures for the collector suites: every storage and API test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import fresh_schema, pg_base_url, session_database
from tests.support.live import LiveCollector, live_collector


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """This session's own PostgreSQL database (None when RAMPART_TEST_PG_URL is empty)."""
    if not pg_base_url():
        yield None
        return
    with session_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_database: str | None) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    if pg_database is None:
        pytest.skip("RAMPART_TEST_PG_URL is empty: PostgreSQL half skipped")
    with fresh_schema(pg_database) as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str | None) -> Iterator[str]:
    """A fresh schema on PostgreSQL only, for tests about PostgreSQL itself (skipped without a server)."""
    if pg_database is None:
        pytest.skip("RAMPART_TEST_PG_URL is empty")
    with fresh_schema(pg_database) as url:
        yield url


@pytest.fixture
def live_config() -> dict[str, Any]:
    """Collector settings for `live`; a test changes them with @pytest.mark.parametrize("live_config", [{...}])."""
    return {}


@pytest.fixture
def live(tmp_path: Path, database_url: str, live_config: dict[str, Any]) -> Iterator[LiveCollector]:
    """A collector served over HTTPS in this process (a fixture, so that the test's responses, which keep
    their connections open, are gone before the server stops)."""
    with live_collector(tmp_path, database_url, **live_config) as collector:
        yield collector
