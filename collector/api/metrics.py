"""Prometheus metrics, one registry per application.

With several worker processes (`serve` with `workers` > 1), prometheus_client keeps each process's values
in files of the directory named by $PROMETHEUS_MULTIPROC_DIR, and /metrics adds up every process's files,
so that a scrape counts the whole `serve`, whichever worker answers it.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def shared_dir() -> str | None:
    return os.environ.get(METRICS_DIR_VARIABLE) or None


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rampart_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "rampart_http_request_seconds",
            "Time to answer HTTP requests, by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.reports = Counter(
            "rampart_reports", "Agent reports by outcome (stored, duplicate)", ["outcome"], registry=self.registry
        )
        self.results = Counter("rampart_results_stored", "Results stored from agent reports", registry=self.registry)
        self.not_counted = Counter(
            "rampart_results_not_counted",
            "Results kept only in the raw report: not judged against a policy assigned to the agent, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.status_changes = Counter(
            "rampart_status_changes", "Results whose status changed (history written)", registry=self.registry
        )
        self.rejected = Counter(
            "rampart_agent_requests_rejected",
            "Agent requests refused, by error code",
            ["code"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "rampart_ingest_seconds",
            "Time to store one report (database transaction)",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.ingest_pending = Gauge(
            "rampart_ingest_pending",
            "Reports being stored or waiting to be",
            registry=self.registry,
            multiprocess_mode="livesum",  # of the workers alive
        )
        self.ingest_receiving = Gauge(
            "rampart_ingest_receiving",
            "Report bodies being received, before their signature is checked (they hold no ingest slot)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.overloaded = Counter(
            "rampart_ingest_overloaded", "Reports refused with 503 because ingest was full", registry=self.registry
        )
        self.job_runs = Counter(
            "rampart_job_runs", "Scheduled jobs run by this collector", ["job", "status"], registry=self.registry
        )

    def exposition(self) -> bytes:
        """The text /metrics answers: this process's metrics, or with several workers all of theirs."""
        directory = shared_dir()
        if directory is None:
            return generate_latest(self.registry)
        _forget_dead_workers(directory)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(combined)

    @staticmethod
    def process_stopped() -> None:
        """A worker's live gauges (ingest pending) stop counting when it stops; its counters stay counted."""
        if shared_dir() is not None:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _forget_dead_workers(directory: str) -> None:
    """A worker that died without stopping (killed; uvicorn starts another) left its live gauges behind:
    drop them, so that ingest pending counts only workers alive."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        # psutil, not os.kill(pid, 0), which on Windows would end the process it asks about.
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]
