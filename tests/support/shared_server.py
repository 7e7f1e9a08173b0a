"""The run's shared PostgreSQL server, found down: what its log said, started again, and said so at the end.

A CI run once lost the shared server (RAMPART_TEST_PG_URL) half-way through the slow suite: every later
test that wanted it failed with "connection refused", and nothing in the output said why. Nothing in the
suite stops that server (the scenarios that restart a database use their own, tests/reliability/pgserver.py),
so when a fixture finds it unreachable this module records the server's own log, waits for a recovery in
progress or starts the local cluster again (as .ci/run does before the suite), and the run's summary prints
what was found (tests/conftest.py), so a second occurrence shows its cause instead of a wall of errors.
Only a cluster on this machine, on the URL's port, is ever started; a remote server is left alone.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from collector.storage.engine import normalise_url

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", None)
READY_WAIT_S = 60.0
LOG_LINES = 25

# What was found each time the server was away, for the run's summary.
FOUND_DOWN: list[str] = []


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    port: int
    status: str
    log: Path


def local_cluster(port: int) -> Cluster | None:
    """The Debian cluster on `port` (pg_lsclusters), or None where there is none or no postgresql-common."""
    if shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[2] == str(port):
            return Cluster(fields[0], fields[1], port, fields[3], Path(fields[6]))
    return None


def _accepts(host: str, port: int) -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", host, "-p", str(port)], timeout=30).returncode == 0


def _wait_ready(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _accepts(host, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _log_tail(cluster: Cluster) -> str:
    try:
        lines = cluster.log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(its log {cluster.log} could not be read: {exc})"
    return "\n".join(lines[-LOG_LINES:])


def revive(url: str, error: str) -> bool:
    """Bring the local server of `url` back after `error`; True when it accepts connections again."""
    parsed = sa.engine.make_url(normalise_url(url))
    host, port = parsed.host, parsed.port or 5432
    if host not in LOCAL_HOSTS or shutil.which("pg_isready") is None:
        return False
    cluster = local_cluster(port)
    if cluster is None:
        return False
    reached = host or "127.0.0.1"
    if _wait_ready(reached, port, 10):  # a crash recovery in progress, or a blip
        FOUND_DOWN.append(f"{reached}:{port} refused a connection ({error.strip()[:200]}), then accepted again")
        return True
    found = f"{reached}:{port} was down (pg_lsclusters: {cluster.status}); its log ended:\n{_log_tail(cluster)}"
    started = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster.version, cluster.name, "start"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    ready = _wait_ready(reached, port, READY_WAIT_S)
    outcome = "started again" if ready else f"could not be started ({started.returncode}: {started.stderr.strip()})"
    FOUND_DOWN.append(f"{found}\n-> {outcome}")
    return ready


def connect(engine: sa.Engine, url: str) -> sa.Connection:
    """engine.connect(), reviving the shared local server once if it is found away."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        if not revive(url, str(exc.orig) if exc.orig else str(exc)):
            raise
        return engine.connect()
