"""`rampart-agent run`: the long-lived daemon, kept small.

It holds only a scheduler (APScheduler 3), timers and signal handling. Every run of checks, check-in and
delivery happens in a short-lived worker process (`python -m agent.worker`), which imports requests,
cryptography and the policy engine, does its task and exits, so the memory those need is given back to the
machine between runs. This module must not import them: docs/benchmarks.md measures what it holds.

Scheduling: one job per distinct check interval (checks sharing an interval run in one worker and share
probe results); the first run waits a random splay, each later one a random jitter, so a fleet does not
fire at once; missed runs (a laptop asleep) coalesce into one; runs never overlap. SIGTERM or SIGINT stop
the daemon cleanly (the running worker is asked to stop, then killed if it does not); SIGHUP re-reads the
config and policy schedule.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from checks.logformat import LOG_FORMATS, use_format

log = logging.getLogger("rampart.agent")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STOP_GRACE_S = 20.0
PLAN_TIMEOUT_S = 120.0
UTC = dt.UTC


def worker_command(task: str, config_path: str | None, *extra: str, log_format: str | None = None) -> list[str]:
    # -P: never put the working directory on sys.path, so nothing planted there is imported as root.
    # --parent-pipe: the worker stops when its stdin, a pipe only we hold open, closes (we are gone).
    command = [sys.executable, "-P", "-m", "agent.worker", task, "--parent-pipe"]
    if config_path:
        command += ["--config", config_path]
    if log_format:  # given on our command line: the workers write the same lines as we do
        command += ["--log-format", log_format]
    return command + list(extra)


class Daemon:
    def __init__(
        self,
        config_path: str | None,
        rng: random.Random | None = None,
        *,
        new_session: bool = True,
        log_format: str | None = None,
    ) -> None:
        self.config_path = config_path
        # --log-format as given; None: the config's, which the first worker reports (we do not read it)
        self.log_format = log_format
        self.new_session = new_session
        self.rng = rng or random.Random()
        self.wake = threading.Event()
        self.stopping = False
        self.replan_requested = False
        self.child: subprocess.Popen[str] | None = None
        self.child_lock = threading.Lock()
        self.plan: dict[str, Any] = {}
        self.scheduler: BackgroundScheduler | None = None

    # --- workers ---------------------------------------------------------------------------------------

    def spawn(self, task: str, *extra: str, timeout: float) -> tuple[int, dict[str, Any]]:
        """Run one worker to completion; its stderr (logs) goes where ours goes."""
        with self.child_lock:
            if self.stopping:
                return EXIT_FAILED, {"error": "stopping"}
            popen_args: dict[str, Any] = {}
            if os.name == "posix" and self.new_session:
                popen_args["start_new_session"] = True  # a terminal's Ctrl-C reaches us; we stop the worker
            # The worker's lifeline: it reads the other end as stdin and stops at end of file, which comes
            # when this process ends in any way, SIGKILL included (the write end is not inherited by anyone).
            lifeline_read, lifeline_write = os.pipe()
            try:
                self.child = subprocess.Popen(
                    worker_command(task, self.config_path, *extra, log_format=self.log_format),
                    stdin=lifeline_read,
                    stdout=subprocess.PIPE,
                    text=True,
                    **popen_args,
                )
            except BaseException:
                os.close(lifeline_write)
                raise
            finally:
                os.close(lifeline_read)
            child = self.child
        try:
            stdout, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("worker %s ran longer than %.0fs; stopped", task, timeout)
            self._kill(child)
            stdout, _ = child.communicate()
        finally:
            os.close(lifeline_write)
            with self.child_lock:
                self.child = None
        summary: dict[str, Any] = {}
        for line in reversed((stdout or "").strip().splitlines()):
            try:
                summary = json.loads(line)
                break
            except ValueError:
                continue
        if self.log_format is None and summary.get("log_format") in LOG_FORMATS:
            self.log_format = str(summary["log_format"])  # the config's: ours from now on, and the workers'
            use_format(self.log_format)
        return child.returncode, summary

    def _kill(self, child: subprocess.Popen[str]) -> None:
        try:
            if os.name == "posix":
                os.killpg(child.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                child.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def _stop_child(self) -> None:
        with self.child_lock:
            self.stopping = True
            child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop within %.0fs; killed", STOP_GRACE_S)
            self._kill(child)

    # --- the plan --------------------------------------------------------------------------------------

    def load_plan(self) -> dict[str, Any] | None:
        code, plan = self.spawn("plan", timeout=PLAN_TIMEOUT_S)
        if code != EXIT_OK:
            return None
        return plan

    def _timeout(self) -> float:
        return float(self.plan.get("run_timeout_s", 900))

    def _start_date(self, interval: float) -> dt.datetime:
        splay = min(float(self.plan.get("splay_s", 0)), interval)
        return dt.datetime.now(UTC) + dt.timedelta(seconds=self.rng.uniform(0, splay))

    def _add(self, job: Any, interval: float, job_id: str, args: list[Any] | None = None) -> None:
        """An interval job whose first run is at a random point of the splay (at once when splay is 0)."""
        assert self.scheduler is not None
        first = self._start_date(interval)
        jitter = float(self.plan.get("jitter_s", 0))
        trigger = IntervalTrigger(
            seconds=interval, start_date=first, timezone=UTC, jitter=min(jitter, interval / 2) or None
        )
        # next_run_time given explicitly: left to the trigger, a start date just past would mean one interval later
        self.scheduler.add_job(
            job, trigger, args=args, id=job_id, name=job_id, next_run_time=first, replace_existing=True
        )

    def apply_plan(self, plan: dict[str, Any]) -> None:
        """(Re)schedule the check jobs; jobs whose interval is unchanged keep their place in time."""
        assert self.scheduler is not None
        previous_checkin = self.plan.get("checkin_interval_s")
        self.plan = plan
        logging.getLogger().setLevel(getattr(logging, str(plan.get("log_level", "info")).upper(), logging.INFO))
        wanted: dict[str, tuple[float, list[str]]] = {}
        for job in plan.get("jobs", []):
            interval = float(job["interval_s"])
            wanted[f"checks-{interval:g}s"] = (interval, list(job["checks"]))
        for job in self.scheduler.get_jobs():
            if job.id.startswith("checks-") and job.id not in wanted:
                job.remove()
        for job_id, (interval, keys) in wanted.items():
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.modify_job(job_id, args=[keys])
            else:
                self._add(self.run_checks, interval, job_id, args=[keys])
        checkin = float(plan.get("checkin_interval_s", 3600))
        if self.scheduler.get_job("checkin") is None or previous_checkin != checkin:
            self._add(self.checkin, checkin, "checkin")
        total = sum(len(keys) for _, keys in wanted.values())
        log.info(
            "schedule: %d checks in %d job(s) (%s); check-in every %gs; policy %s",
            total,
            len(wanted),
            ", ".join(f"{len(k)} every {i:g}s" for i, k in wanted.values()) or "none yet",
            checkin,
            plan.get("policy_etag") or "none yet",
        )

    def replan(self) -> None:
        plan = self.load_plan()
        if plan is None:
            log.error("could not re-read the config and policy schedule; keeping the current one")
            return
        self.apply_plan(plan)

    # --- jobs ------------------------------------------------------------------------------------------

    def run_checks(self, keys: list[str]) -> None:
        self._after("run", *self.spawn("run", "--checks", ",".join(keys), timeout=self._timeout()))

    def checkin(self) -> None:
        self._after("checkin", *self.spawn("checkin", timeout=self._timeout()))

    def deliver(self) -> None:
        self._after("deliver", *self.spawn("deliver", timeout=self._timeout()))

    def _after(self, task: str, code: int, summary: dict[str, Any]) -> None:
        if self.stopping:
            return
        _log_summary(task, code, summary)
        if summary.get("policy_changed"):
            self.replan_requested = True
            self.wake.set()
        pending = int(summary.get("pending") or 0)
        next_attempt = summary.get("next_attempt_at")
        if pending and self.scheduler is not None and not summary.get("refused"):
            when = max(float(next_attempt or 0), time.time() + 1)
            self.scheduler.add_job(
                self.deliver,
                DateTrigger(run_date=dt.datetime.fromtimestamp(when, UTC), timezone=UTC),
                id="deliver",
                name="deliver",
                replace_existing=True,
            )

    # --- lifecycle -------------------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        self.wake.set()

    def _on_hangup(self, signum: int, frame: object) -> None:
        self.replan_requested = True
        self.wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._on_hangup)
        if hasattr(signal, "SIGBREAK"):  # pragma: no cover - Windows console Ctrl-Break
            signal.signal(signal.SIGBREAK, self._on_stop)

    def run_forever(self) -> int:
        self.install_signal_handlers()
        plan = self.load_plan()
        if plan is None:
            return EXIT_USAGE
        if not plan.get("enrolled"):
            print("rampart-agent: error: this machine is not enrolled; run rampart-agent enroll", file=sys.stderr)
            return EXIT_USAGE
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},  # one worker at a time: runs never overlap
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler.start()
        self.apply_plan(plan)
        log.info("rampart-agent started as %s (pid %d)", plan.get("agent_id"), os.getpid())
        while True:
            self.wake.wait(timeout=3600)
            self.wake.clear()
            if self.stopping:
                break
            if self.replan_requested:
                self.replan_requested = False
                self.replan()
        log.info("stopping")
        self._stop_child()
        self.scheduler.shutdown(wait=True)
        log.info("stopped")
        return EXIT_OK


def run_once(config_path: str | None, log_format: str | None = None) -> int:
    """`run --once`: one worker does check-in, every check and delivery; its exit code is ours."""
    daemon = Daemon(config_path, new_session=False, log_format=log_format)

    def forward(signum: int, frame: object) -> None:
        child = daemon.child  # no lock: the handler runs in the thread that may hold it
        if child is not None and child.poll() is None:
            child.terminate()  # the worker unwinds cleanly; what it committed stays in the spool

    signal.signal(signal.SIGTERM, forward)
    code, summary = daemon.spawn("once", timeout=24 * 3600)
    _log_summary("once", code, summary)
    return code if code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE) else EXIT_FAILED


def _log_summary(task: str, code: int, summary: dict[str, Any]) -> None:
    parts = []
    if "results" in summary:
        counts = summary.get("counts") or {}
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        parts.append(f"{summary['results']} results" + (f" ({detail})" if detail else ""))
    if "delivered" in summary:
        parts.append(f"delivered {summary['delivered']} report(s), {summary.get('pending', 0)} pending")
    if summary.get("delivery_skipped"):
        parts.append(f"delivery {summary['delivery_skipped']}")
    if summary.get("dropped_now"):
        parts.append(f"spool full: dropped {summary['dropped_now']} oldest results")
    if "cpu_s" in summary:
        parts.append(f"cpu {summary['cpu_s']}s, peak {summary.get('max_rss_mb')} MB")
    problem = summary.get("error") or summary.get("delivery_error") or summary.get("checkin_error")
    level = logging.INFO if code == EXIT_OK else logging.WARNING
    text = f"{task}: " + "; ".join(parts) if parts else f"{task}: exit {code}"
    log.log(level, text + (f"; {problem}" if problem else ""))
