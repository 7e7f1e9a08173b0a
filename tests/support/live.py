"""A collector served over real HTTPS from a thread of the test process, by the server `serve` runs.

Faster to start than a process (the API tests start one per test, on SQLite and on PostgreSQL), yet
everything goes over the network as in production: TLS with the collector's own CA, uvicorn, the full
middleware stack. Tests also get the engine, to check what was (or was not) stored.
"""

from __future__ import annotations

import datetime as dt
import gc
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from collector.config import CollectorConfig
from collector.initialise import initialise
from collector.storage import registry
from collector.storage.engine import make_engine, read_tx, write_tx
from collector.storage.models import utcnow
from tests.support.agents import SimAgent
from tests.support.policies import store_fleet_policy


@dataclass
class LiveCollector:
    url: str
    ca_file: str
    admin_token: str
    config: CollectorConfig
    engine: Engine
    server: uvicorn.Server
    # Closed before the server stops: an idle TLS connection left open would hold up its shutdown.
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        self.sessions.append(session)
        return session

    def admin(self) -> requests.Session:
        return self.session(self.admin_token)

    def enrollment_token(self, *, group: str | None = None, uses: int = 1, valid_for_s: int = 3600) -> str:
        with write_tx(self.engine) as connection:
            secret, _ = registry.create_token(
                connection,
                group=group or self.config.default_group,
                max_uses=uses,
                valid_for=dt.timedelta(seconds=valid_for_s),
                created_by="test",
                now=utcnow(),
            )
        return secret

    def agent(self) -> SimAgent:
        agent = SimAgent(self.url, self.ca_file)
        self.sessions.append(agent.session)
        return agent

    def enrolled_agent(self, group: str | None = None, hostname: str | None = None) -> SimAgent:
        agent = self.agent()
        if hostname:
            agent.hostname = hostname
        response = agent.enroll(self.enrollment_token(group=group))
        assert response.status_code == 201, response.text
        return agent

    def scalar(self, statement: Any) -> Any:
        with read_tx(self.engine) as connection:
            return connection.execute(statement).scalar()

    def rows(self, statement: Any) -> list[Any]:
        with read_tx(self.engine) as connection:
            return list(connection.execute(statement).all())

    def count(self, table: sa.Table) -> int:
        return int(self.scalar(sa.select(sa.func.count()).select_from(table)))


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_collector(directory: Path, database_url: str, **config: Any) -> Iterator[LiveCollector]:
    base = CollectorConfig(data_dir=str(directory / "collector-data"), database_url=database_url, db_pool_size=4)
    settings = replace(base, **config)
    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    outcome = initialise(settings, engine)
    assert outcome.admin_token
    store_fleet_policy(engine)  # what the simulated agents' results are judged against
    from collector.api.app import create_app
    from collector.api.server import server_config

    app = create_app(settings, engine)
    _cert, _key, ca = settings.tls_paths()
    sock = _listening_socket()
    port = sock.getsockname()[1]
    # The server `serve` runs: the same protocol, limits and proxy settings.
    server = uvicorn.Server(server_config(settings, app, lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process collector did not start")
        time.sleep(0.01)
    live = LiveCollector(f"https://127.0.0.1:{port}", str(ca), outcome.admin_token, settings, engine, server)
    try:
        yield live
    finally:
        for session in live.sessions:
            session.close()
        gc.collect()  # responses in reference cycles keep their connections open
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        engine.dispose()
