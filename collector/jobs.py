"""Scheduled jobs that run once across all collector processes sharing a database.

Each process polls every `job_poll_s`. A run is claimed by moving the job's `next_run_at` forward with one
conditional UPDATE (`... WHERE next_run_at <= now`): on PostgreSQL the second of two concurrent claims
re-reads the row after the first commits and no longer matches, so exactly one process runs each slot.
Every run is recorded in `job_runs` (who, when, outcome). `build_jobs` composes the list at start-up, from
the config it is given (`serve` and `jobs run` call it): no job registers itself on import.

A run whose process dies (SIGKILL, a crash, a host lost) cannot record its own end, so every process, at
each poll, records such runs as `interrupted` (a run that did not finish could not observe: a failed run,
never a `running` one for ever). A run is known dead when its holder (`host:pid:nonce`) is a process of
this host that no longer exists, which a restarted collector sees at its first poll; or, for a holder on
another host, when its heartbeat (`detail.heartbeat_at`, written every HEARTBEAT_S while it runs) is older
than LEASE_S. The heartbeat lives in `detail` because a finished run replaces `detail` with its outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collector.cloud import job as cloud  # one way only: collector.cloud.job does not import this module
from collector.cloud.config import CloudConfig, load_cloud_config
from collector.config import CollectorConfig
from collector.storage import partitions, snapshots
from collector.storage import waivers as waiver_store
from collector.storage.bulk import upsert
from collector.storage.engine import write_tx
from collector.storage.models import (
    cloud_runs,
    job_runs,
    job_schedule,
    observations,
    reports,
    result_intervals,
    utcnow,
)

log = logging.getLogger("rampart.collector.jobs")
BATCH = 5000
HEARTBEAT_S = 30.0
LEASE_S = 180.0  # six heartbeats missed: the process is gone (or cut off from the database, so not observing)


def _always(_config: CollectorConfig) -> bool:
    return True


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: Callable[[CollectorConfig], int]
    run: Callable[[Engine, CollectorConfig, dt.datetime], dict[str, Any]]
    enabled: Callable[[CollectorConfig], bool] = _always  # e.g. cloud checks only once they are configured


def claim(connection: Connection, name: str, now: dt.datetime, interval: dt.timedelta) -> bool:
    """True when this caller won the job's current slot (and moved the next one `interval` ahead)."""
    statement = upsert(connection, job_schedule).values(name=name, next_run_at=now)
    connection.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
    won = connection.execute(
        job_schedule.update()
        .where(job_schedule.c.name == name, job_schedule.c.next_run_at <= now)
        .values(next_run_at=now + interval)
    ).rowcount
    return bool(won)


def run_due(
    engine: Engine,
    config: CollectorConfig,
    holder: str,
    now: dt.datetime | None = None,
    only: set[str] | None = None,
    *,
    jobs: Mapping[str, Job],
) -> list[dict[str, Any]]:
    """Run every one of `jobs` (from build_jobs) whose slot this process wins; returns what ran."""
    ran = []
    interrupt_abandoned(engine, now or utcnow())
    for job in jobs.values():
        if only is not None and job.name not in only:
            continue
        if not job.enabled(config):
            continue
        started = now or utcnow()
        with write_tx(engine) as connection:
            if not claim(connection, job.name, started, dt.timedelta(seconds=job.interval_s(config))):
                continue
            run_id = connection.execute(
                job_runs.insert()
                .values(
                    name=job.name,
                    holder=holder[:100],
                    started_at=started,
                    status="running",
                    detail={"heartbeat_at": _stamp(utcnow())},
                )
                .returning(job_runs.c.id)
            ).scalar_one()
        try:
            with heartbeat(engine, run_id):
                detail = job.run(engine, config, started)
            status = "ok"
        except Exception as exc:  # a failing job is recorded and retried next slot; the server goes on
            log.exception("job failed", extra={"job": job.name})
            detail, status = {"error": f"{type(exc).__name__}: {exc}"[:500]}, "failed"
        with write_tx(engine) as connection:
            connection.execute(
                job_runs.update()
                .where(job_runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status, detail=detail)
            )
        log.info("job ran", extra={"job": job.name, "status": status, **detail})
        ran.append({"job": job.name, "status": status, "detail": detail})
    return ran


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat()


@contextmanager
def heartbeat(engine: Engine, run_id: int, every: float = HEARTBEAT_S) -> Iterator[None]:
    """Write the run's heartbeat every `every` seconds from a thread of its own while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            try:
                with write_tx(engine) as connection:
                    connection.execute(
                        job_runs.update()
                        .where(job_runs.c.id == run_id, job_runs.c.status == "running")
                        .values(detail={"heartbeat_at": _stamp(utcnow())})
                    )
            except sa.exc.SQLAlchemyError:  # the next beat tries again; a lease is several beats long
                log.warning("could not record a job's heartbeat", exc_info=True)

    thread = threading.Thread(target=beat, name="rampart-job-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=30)


def _process_gone(holder: str) -> bool:
    """Whether `holder` names a process of this host that no longer exists (never guessed for another host)."""
    parts = holder.rsplit(":", 2)  # host:pid:nonce, as collector/api/app.py writes it
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user's process
        return False
    return False


def _heartbeat_of(row: Any) -> dt.datetime:
    """The run's last heartbeat; its start for a run that has none (written before heartbeats were)."""
    stamp = row.detail.get("heartbeat_at") if isinstance(row.detail, dict) else None
    if isinstance(stamp, str):
        try:
            return dt.datetime.fromisoformat(stamp)
        except ValueError:
            pass
    started: dt.datetime = row.started_at
    return started


def interrupt_abandoned(engine: Engine, now: dt.datetime) -> int:
    """Record as `interrupted` every `running` run whose process is gone; returns how many."""
    with engine.connect() as connection:
        running = connection.execute(
            sa.select(job_runs.c.id, job_runs.c.holder, job_runs.c.started_at, job_runs.c.detail).where(
                job_runs.c.status == "running"
            )
        ).all()
    lease = dt.timedelta(seconds=LEASE_S)
    interrupted = 0
    for row in running:
        if _process_gone(row.holder):
            why = f"interrupted: its collector process ({row.holder}) ended before the run finished"
        elif now - _heartbeat_of(row) > lease:
            why = f"interrupted: no heartbeat from {row.holder} for over {LEASE_S:g}s"
        else:
            continue
        with write_tx(engine) as connection:
            # Only if still running: its process may have finished it meanwhile, or another process swept it.
            interrupted += connection.execute(
                job_runs.update()
                .where(job_runs.c.id == row.id, job_runs.c.status == "running")
                .values(status="interrupted", finished_at=now, detail={"error": why})
            ).rowcount
        log.warning("job run interrupted", extra={"run_id": row.id, "holder": row.holder, "reason": why})
    return interrupted


class JobRunner(threading.Thread):
    """The background thread of one collector process."""

    def __init__(
        self,
        engine: Engine,
        config: CollectorConfig,
        jobs: Mapping[str, Job],
        holder: str,
        on_run: Callable[[str, str], None],
    ) -> None:
        super().__init__(name="rampart-jobs", daemon=True)
        self.engine = engine
        self.config = config
        self.jobs = jobs
        self.holder = holder
        self.on_run = on_run
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.config.job_poll_s):
            try:
                for outcome in run_due(self.engine, self.config, self.holder, jobs=self.jobs):
                    self.on_run(outcome["job"], outcome["status"])
            except sa.exc.SQLAlchemyError:
                log.warning("could not look for due jobs", exc_info=True)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


# --- retention -----------------------------------------------------------------------------------------


def _delete_in_batches(engine: Engine, table: sa.Table, condition: Any) -> int:
    deleted = 0
    while True:
        with write_tx(engine) as connection:
            ids = sa.select(table.c.id).where(condition).limit(BATCH).scalar_subquery()
            # The condition again: on a partitioned table it confines the delete to the partitions it names.
            count = connection.execute(table.delete().where(table.c.id.in_(ids), condition)).rowcount
        deleted += count
        if count < BATCH:
            return deleted
        time.sleep(0)  # let ingest in between batches


def retention(engine: Engine, config: CollectorConfig, now: dt.datetime) -> dict[str, Any]:
    """Forget history and raw reports past the retention horizon; expire waivers; write the counter snapshots
    due (collector/storage/snapshots.py); on PostgreSQL create history and report partitions ahead and drop
    the months past the horizon (collector/storage/partitions.py), then delete what is left of the horizon's
    month."""
    cutoff = now - dt.timedelta(days=config.retention_days)
    horizon = cutoff.date()
    with write_tx(engine) as connection:
        expired = waiver_store.expire_due(connection, now)
    with write_tx(engine) as connection:
        snapshots.lock_changes(connection)
        snapshots.quiet_triggers(connection)  # folding and compacting change no sum the snapshots kept hold
        folded = snapshots.fold_before(connection, horizon)
        compacted = snapshots.compact_stripes(connection, before=now.date())
        snapshots.quiet_triggers(connection, False)
        forgotten = snapshots.forget_before(connection, horizon)
        taken = snapshots.take_snapshots(
            connection, first=horizon, yesterday=now.date() - dt.timedelta(days=1), now=now
        )
    outcome: dict[str, Any] = {"partitions_created": 0, "partitions_dropped": 0}
    if engine.dialect.name == "postgresql":
        try:
            with write_tx(engine) as connection:
                outcome = partitions.maintain(connection, now.date(), horizon)
        except sa.exc.OperationalError:  # a lock not granted in time: the next run does it
            log.warning("history partitions not maintained this run", exc_info=True)
    intervals = _delete_in_batches(engine, result_intervals, result_intervals.c.valid_to < cutoff)
    # Raw reports by when the agent made them, the key PostgreSQL partitions them on.
    old_reports = _delete_in_batches(engine, reports, reports.c.created_on < cutoff.date())
    with write_tx(engine) as connection:
        old_observations = connection.execute(observations.delete().where(observations.c.day < cutoff.date())).rowcount
        old_runs = connection.execute(job_runs.delete().where(job_runs.c.finished_at < cutoff)).rowcount
        old_cloud_runs = _forget_cloud_runs(connection, cutoff)
    from collector.dashboard.jobs import prune

    dashboard = prune(engine, config, now)
    return {
        **dashboard,
        **outcome,
        "expired_waivers": expired,
        "deleted_intervals": intervals,
        "deleted_reports": old_reports,
        "deleted_observations": old_observations,
        "folded_daily_rows": folded,
        "compacted_daily_rows": compacted,
        "snapshots_taken": taken,
        "snapshots_forgotten": forgotten,
        "deleted_job_runs": old_runs,
        "deleted_cloud_runs": old_cloud_runs,
    }


def _forget_cloud_runs(connection: sa.Connection, cutoff: dt.datetime) -> int:
    """Cloud runs that finished before the horizon, except each tenant's last: the summary reads it (whether
    the tenant's results are current, and since when not), however long ago it ran."""
    last_of_each = sa.select(sa.func.max(cloud_runs.c.id)).group_by(cloud_runs.c.tenant_id).scalar_subquery()
    deleted = connection.execute(
        cloud_runs.delete().where(cloud_runs.c.finished_at < cutoff, cloud_runs.c.id.not_in(last_of_each))
    )
    return int(deleted.rowcount)


# --- composition ---------------------------------------------------------------------------------------


def build_jobs(config_path: str | None) -> dict[str, Job]:
    """The jobs of a collector process, by name, in the order they run at a poll. `config_path` is the file
    the cloud job reads its `cloud:` section from at every slot (so a changed section takes effect without
    a restart); None reads no file (the RAMPART_CLOUD__* variables only)."""

    def cloud_config() -> CloudConfig:
        return load_cloud_config(config_path)

    listed = [
        Job("retention", lambda config: config.retention_interval_s, retention),
        Job(
            "cloud",
            lambda _config: cloud.cloud_interval_s(cloud_config),
            lambda engine, _config, now: cloud.scheduled_cloud_run(engine, cloud_config, now),
            enabled=lambda _config: cloud.cloud_enabled(cloud_config),
        ),
    ]
    return {job.name: job for job in listed}
