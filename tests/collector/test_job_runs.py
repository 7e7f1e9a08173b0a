"""A scheduled job's run whose process died is recorded `interrupted`, never left `running` for ever.

A restarted collector sees at its first poll that the holder of a `running` run was a process of this
host that no longer exists; a holder on another host is judged by its heartbeat, against the lease.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from typing import Any

import sqlalchemy as sa

from collector import jobs
from collector.storage import models
from collector.storage.engine import write_tx
from tests.support.live import LiveCollector

HOST = socket.gethostname()


def running_run(live: LiveCollector, holder: str, heartbeat: dt.datetime) -> int:
    with write_tx(live.engine) as connection:
        run_id: int = connection.execute(
            models.job_runs.insert()
            .values(name="cloud", holder=holder, started_at=heartbeat, status="running",
                    detail={"heartbeat_at": heartbeat.isoformat()})
            .returning(models.job_runs.c.id)
        ).scalar_one()  # fmt: skip
    return run_id


def run(live: LiveCollector, run_id: int) -> Any:
    (row,) = live.rows(sa.select(models.job_runs).where(models.job_runs.c.id == run_id))
    return row


def poll(live: LiveCollector, now: dt.datetime | None = None) -> None:
    """What each collector process does every job_poll_s (no job is due here: only the sweep acts)."""
    jobs.run_due(
        live.engine, live.config, f"{HOST}:{os.getpid()}:poller", now=now, only=set(), jobs=jobs.build_jobs(None)
    )


def test_a_run_whose_process_ended_is_interrupted_at_the_next_poll(live: LiveCollector) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    now = models.utcnow()
    dead = running_run(live, f"{HOST}:{ended.pid}:a1b2c3", now)
    alive = running_run(live, f"{HOST}:{os.getpid()}:d4e5f6", now)
    poll(live)
    interrupted = run(live, dead)
    assert interrupted.status == "interrupted" and interrupted.finished_at is not None
    assert f"{HOST}:{ended.pid}:a1b2c3" in interrupted.detail["error"], interrupted.detail
    assert "ended before the run finished" in interrupted.detail["error"]
    assert run(live, alive).status == "running"  # its process is this one: still running


def test_a_run_on_another_host_is_interrupted_once_its_heartbeat_is_older_than_the_lease(
    live: LiveCollector,
) -> None:
    beat = models.utcnow()
    elsewhere = running_run(live, "replica-b:4242:0a0b0c", beat)
    poll(live, beat + dt.timedelta(seconds=jobs.LEASE_S - 1))
    assert run(live, elsewhere).status == "running"  # another host's pid says nothing here: the lease decides
    poll(live, beat + dt.timedelta(seconds=jobs.LEASE_S + 1))
    interrupted = run(live, elsewhere)
    assert interrupted.status == "interrupted", interrupted
    assert "no heartbeat from replica-b:4242:0a0b0c" in interrupted.detail["error"]


def test_a_running_job_writes_its_heartbeat(live: LiveCollector) -> None:
    start = models.utcnow() - dt.timedelta(minutes=10)
    run_id = running_run(live, f"{HOST}:{os.getpid()}:beat01", start)
    with jobs.heartbeat(live.engine, run_id, every=0.05):
        deadline = time.monotonic() + 30
        while run(live, run_id).detail["heartbeat_at"] == start.isoformat():
            assert time.monotonic() < deadline, "no heartbeat written"
            time.sleep(0.02)
    assert dt.datetime.fromisoformat(run(live, run_id).detail["heartbeat_at"]) > start
