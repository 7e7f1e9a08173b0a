"""Fixtures of the security suite: a collector over HTTPS on SQLite and on PostgreSQL, the figures each
check writes, and callers of every kind (no token, bad tokens, each role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.storage import users
from collector.storage.engine import write_tx
from collector.storage.models import utcnow
from tests.reliability.figures import figures, pytest_runtest_makereport  # noqa: F401 - fixture and hook
from tests.support.databases import fresh_schema, pg_base_url, session_database
from tests.support.live import LiveCollector, live_collector


@pytest.fixture(scope="session")
def security_pg() -> Iterator[str | None]:
    if not pg_base_url():
        yield None
        return
    with session_database() as url:
        yield url


@pytest.fixture
def live_settings() -> dict[str, Any]:
    """Collector settings for `live`; a module overrides this fixture to change them."""
    return {}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(
    request: pytest.FixtureRequest, tmp_path: Path, security_pg: str | None, live_settings: dict[str, Any]
) -> Iterator[LiveCollector]:
    if request.param == "sqlite":
        with live_collector(tmp_path, f"sqlite:///{tmp_path / 'collector.db'}", **live_settings) as collector:
            yield collector
        return
    if security_pg is None:
        pytest.skip("RAMPART_TEST_PG_URL is empty: PostgreSQL half skipped")
    with fresh_schema(security_pg) as url, live_collector(tmp_path, url, **live_settings) as collector:
        yield collector


@dataclass
class Callers:
    """API tokens of every kind, for one collector."""

    roles: dict[str, str]  # role -> a valid token
    revoked: str
    expired: str
    disabled: str


def make_callers(live: LiveCollector) -> Callers:
    now = utcnow()
    roles: dict[str, str] = {}
    with write_tx(live.engine) as connection:
        for role in ("admin", "analyst", "auditor"):
            users.add_user(connection, f"{role}-1", role, by="test", now=now)
            roles[role], _ = users.create_token(connection, f"{role}-1", by="test", now=now)
        revoked, listing = users.create_token(connection, "auditor-1", by="test", now=now)
        users.revoke_token(connection, listing["id"], by="test", now=now)
        expired, _ = users.create_token(
            connection, "auditor-1", by="test", now=now - dt.timedelta(days=2), valid_for=dt.timedelta(days=1)
        )
        users.add_user(connection, "gone", "admin", by="test", now=now)
        disabled, _ = users.create_token(connection, "gone", by="test", now=now)
        users.disable_user(connection, "gone", by="test", now=now)
    return Callers(roles, revoked, expired, disabled)


@pytest.fixture
def callers(live: LiveCollector) -> Callers:
    return make_callers(live)
