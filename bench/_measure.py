"""Measuring a served collector from the side: PostgreSQL's CPU and lock waits, and the books after a run.

Support for bench/scale_out.py and bench/ingest_http.py (a `_` module: not a benchmark).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import psutil
import sqlalchemy as sa
from _fleet import Fleet
from _support import CHECKS, cpu_seconds, process_tree
from loadgen import Drive, Outcome

from collector.storage import models

AUXILIARY = ("walwriter", "background writer", "checkpointer")


class Sampler(threading.Thread):
    """PostgreSQL seen from the side while a run goes: its backends' CPU (psutil, by the pids that
    pg_stat_activity names for this database), who waits on what, and the locks not granted."""

    def __init__(self, database_url: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(
            sa.engine.make_url(database_url).set(drivername="postgresql+psycopg"),
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
        )
        self.interval = interval
        self.stopping = threading.Event()
        self.marked = threading.Event()
        self.first: dict[int, float] = {}  # backend pid -> CPU seconds at the release (0 if it started later)
        self.last: dict[int, float] = {}
        self.auxiliary: list[psutil.Process] = []
        self.samples = 0
        self.lock_samples = 0  # samples with at least one backend waiting on a lock
        self.lock_waiting = 0  # backends waiting on a lock, summed over samples
        self.active = 0  # backends running a statement, summed over samples
        self.waits: dict[str, int] = {}  # wait_event_type:wait_event of active backends, summed over samples
        self.ungranted: dict[str, int] = {}  # locktype/mode of locks not granted, summed over samples

    def run(self) -> None:
        with self.engine.connect() as connection:
            self.auxiliary = [
                psutil.Process(pid)
                for pid in connection.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE backend_type = ANY(:kinds)"),
                    {"kinds": list(AUXILIARY)},
                ).scalars()
            ]
            while not self.stopping.is_set():
                self._sample(connection)
                self.stopping.wait(self.interval)
            self._sample(connection)

    def _sample(self, connection: sa.Connection) -> None:
        rows = connection.execute(
            sa.text(
                "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
        for row in rows:
            try:
                times = psutil.Process(row.pid).cpu_times()
            except psutil.Error:
                continue
            used = times.user + times.system
            if row.pid not in self.first:
                self.first[row.pid] = used if not self.marked.is_set() else 0.0
            self.last[row.pid] = used
        if not self.marked.is_set():
            return
        self.samples += 1
        waiting = [row for row in rows if row.wait_event_type == "Lock"]
        self.lock_samples += bool(waiting)
        self.lock_waiting += len(waiting)
        for row in rows:
            if row.state == "active":
                self.active += 1
                key = f"{row.wait_event_type}:{row.wait_event}" if row.wait_event_type else "CPU (no wait)"
                self.waits[key] = self.waits.get(key, 0) + 1
        for locktype, mode in connection.execute(
            sa.text(
                "SELECT l.locktype, l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE NOT l.granted AND a.datname = current_database()"
            )
        ).all():
            key = f"{locktype}/{mode}"
            self.ungranted[key] = self.ungranted.get(key, 0) + 1

    def mark(self) -> float:
        """The clock starts: the backends' CPU so far is the baseline. Returns the auxiliaries' CPU."""
        for pid, used in self.last.items():
            self.first[pid] = used
        self.marked.set()
        return cpu_seconds(self.auxiliary)

    def finish(self) -> dict[str, Any]:
        self.stopping.set()
        self.join(timeout=30)
        self.engine.dispose()
        samples = max(self.samples, 1)
        return {
            "backend_cpu_s": sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last),
            "backends": len(self.last),
            "samples": self.samples,
            "lock_wait_sample_share": self.lock_samples / samples,
            "mean_backends_waiting_on_locks": self.lock_waiting / samples,
            "mean_active_backends": self.active / samples,
            "active_backend_waits": dict(sorted(self.waits.items(), key=lambda kv: -kv[1])[:8]),
            "locks_not_granted": self.ungranted,
        }


def books(engine: sa.Engine) -> dict[str, int]:
    """What the collector holds: reports kept, and the counters, open intervals and latest rows."""
    with engine.connect() as connection:

        def scalar(statement: Any) -> int:
            return int(connection.execute(statement).scalar_one() or 0)

        return {
            "reports": scalar(sa.select(sa.func.count()).select_from(models.reports)),
            "counted": scalar(sa.select(sa.func.sum(models.status_counts.c.count))),
            "daily": scalar(sa.select(sa.func.sum(models.daily_changes.c.delta))),
            "open_intervals": scalar(
                sa.select(sa.func.count())
                .select_from(models.result_intervals)
                .where(models.result_intervals.c.valid_to.is_(None))
            ),
            "latest": scalar(sa.select(sa.func.count()).select_from(models.latest_results)),
            "latest_failing": scalar(
                sa.select(sa.func.count())
                .select_from(models.latest_results)
                .where(models.latest_results.c.status == "fail")
            ),
        }


def check_books(before: dict[str, int], after: dict[str, int], outcome: Outcome, fleet: Fleet) -> dict[str, int]:
    """Nothing lost, nothing counted twice: every acknowledged report kept once (a report that failed
    without an answer may or may not have been kept), and the state exactly the fleet's."""
    results = len(fleet) * CHECKS
    kept = after["reports"] - before["reports"]
    lost = max(outcome.stored - kept, 0)
    extra = max(kept - outcome.stored - len(outcome.failed), 0)
    problems = {
        "lost": lost,
        "kept_unacknowledged_beyond_failures": extra,
        "counted_off_by": abs(after["counted"] - results),
        "daily_changes_off_by": abs(after["daily"] - results),
        "open_intervals_off_by": abs(after["open_intervals"] - results),
        "latest_rows_off_by": abs(after["latest"] - results),
        "failing_off_by": abs(after["latest_failing"] - fleet.failing()) if not outcome.failed else 0,
    }
    if any(problems.values()):
        raise AssertionError(f"the books do not balance: {problems} (before {before}, after {after})")
    return {"kept": kept, **problems}


def measured(
    drive: Drive, collector_pids: Iterable[int], database_url: str | None, proxy_pids: Iterable[int] = ()
) -> tuple[Outcome, dict[str, Any]]:
    """Run `drive` with the clock on: CPU per acknowledged report of the collector processes (and their
    workers), of PostgreSQL's backends for `database_url` (None: SQLite, nothing to sample) and of its
    background processes, of a proxy, and the lock waits seen."""
    drive.prepare()
    sampler = Sampler(database_url) if database_url else None
    if sampler is not None:
        sampler.start()
        time.sleep(0.5)  # the sampler has seen every backend the collectors hold open
    collectors, proxy = process_tree(collector_pids), process_tree(proxy_pids)
    collector_cpu, proxy_cpu = cpu_seconds(collectors), cpu_seconds(proxy)
    auxiliary_cpu = sampler.mark() if sampler is not None else 0.0
    drive.release()
    outcome = drive.wait()
    collector_cpu, proxy_cpu = cpu_seconds(collectors) - collector_cpu, cpu_seconds(proxy) - proxy_cpu
    seen: dict[str, Any] = {}
    if sampler is not None:
        auxiliary_cpu = cpu_seconds(sampler.auxiliary) - auxiliary_cpu
        seen = sampler.finish()
    reports = len(outcome.acknowledged)
    per = 1000 / reports if reports else 0.0
    database_cpu = seen.get("backend_cpu_s")
    figures = {
        **outcome.summary(),
        "collector_cpu_ms_per_report": collector_cpu * per,
        "postgres_cpu_ms_per_report": database_cpu * per if database_cpu is not None else None,
        "postgres_background_cpu_ms_per_report": auxiliary_cpu * per if sampler is not None else None,
        "haproxy_cpu_ms_per_report": proxy_cpu * per if proxy else None,
        "collector_and_postgres_cpu_ms_per_report": (collector_cpu + (database_cpu or 0.0)) * per,
        "postgres": seen,
    }
    return outcome, figures
