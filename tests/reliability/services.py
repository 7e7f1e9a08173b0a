"""Faults done to real services: a collector process killed (SIGKILL) and started again, what it logged,
how many reports its database holds, and waiting for events with a bound (never for a duration)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from collector.storage import models
from collector.storage.engine import make_engine
from tests.support.collector import RunningCollector


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def database_url(collector: RunningCollector, configured: str | None = None) -> str:
    return configured or f"sqlite:///{collector.data_dir / 'collector.db'}"


class ReportCounter:
    """How many reports the collector has stored, read straight from its database."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, 1)

    def __call__(self) -> int:
        try:
            with self.engine.connect() as connection:
                return int(connection.execute(sa.select(sa.func.count()).select_from(models.reports)).scalar_one())
        except sa.exc.OperationalError:
            return -1  # the database is being restarted

    def close(self) -> None:
        self.engine.dispose()


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its group (a `serve` with workers), and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def kill_collector(collector: RunningCollector, index: int | None = None) -> int:
    """SIGKILL one (or every) serve process of `collector`; returns how many were killed."""
    targets = list(collector.processes) if index is None else [collector.processes[index]]
    for process in targets:
        kill(process)
        collector.processes.remove(process)
    return len(targets)


def log_entries(collector: RunningCollector) -> Iterator[dict[str, Any]]:
    for line in collector.log().splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def request_log(collector: RunningCollector, path: str = "/api/v1/reports") -> list[tuple[dt.datetime, int]]:
    """(time, status) of every request to `path` the collector logged (every process, every restart)."""
    found = []
    for entry in log_entries(collector):
        if entry.get("msg") == "request" and entry.get("path") == path:
            found.append((dt.datetime.fromisoformat(entry["ts"]), int(entry["status"])))
    return found


# Warnings that carry a traceback by design: the job thread says why it could not poll (the database away).
EXPECTED_WITH_TRACEBACK = ('"msg": "could not look for due jobs"',)


def tracebacks(text: str) -> list[str]:
    """Log lines with a traceback, less the warnings that log one on purpose during an outage."""
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line and not any(expected in line for expected in EXPECTED_WITH_TRACEBACK)
    ]
