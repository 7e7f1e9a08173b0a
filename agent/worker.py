"""The agent's short-lived worker: `python -m agent.worker TASK`.

The daemon stays small (a scheduler and timers); everything that needs requests, cryptography, the policy
engine or the probes happens here, in a process that exits when its task is done, so that memory is given
back to the machine between runs.

Tasks:
  plan      print the schedule: which checks run at which interval (from the verified policy bundle)
  checkin   send host facts, fetch the policy bundle if it changed, deliver pending reports
  run       run checks (`--checks policy/check,...` or all), commit results to the spool, deliver
  deliver   deliver pending reports
  once      checkin, run every check, deliver regardless of backoff; exit 1 unless everything arrived

The last line on stdout is one JSON object summarising what happened (the daemon reads it); logs go to
stderr. Exit codes: 0 ok, 1 failed (e.g. delivery did not complete), 2 bad config or not enrolled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, load_agent_config
from agent.delivery import DeliveryOutcome, Drain
from agent.lock import FileLock
from agent.policy_cache import Bundle, PolicyCache, PolicyRefused
from agent.spool import Spool, SpoolError
from agent.state import Identity, StateError, StatePaths, check_key_permissions, read_identity
from agent.transport import AgentRefused, CollectorError, RetryPolicy, Transport
from checks import __version__, wire
from checks.backoff import Backoff
from checks.config import ConfigError
from checks.logformat import LOG_FORMATS, log_to_stderr

log = logging.getLogger("rampart.agent.worker")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TASKS = ("plan", "checkin", "run", "deliver", "once")
CHECKIN_PATH = "/api/v1/checkin"
POLICY_PATH = "/api/v1/policy"


class WorkerError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _rusage() -> dict[str, float]:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the commands probes ran
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "cpu_children_s": round(children.ru_utime + children.ru_stime, 3),
        "max_rss_mb": round(usage.ru_maxrss * scale / 2**20, 1),
    }


class Worker:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.paths = StatePaths(Path(config.state_dir))
        self.summary: dict[str, Any] = {}
        self._identity: Identity | None = None
        self._spool: Spool | None = None
        self._transport: Transport | None = None

    # --- resources, opened on first use ----------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            try:
                identity = read_identity(self.paths)
            except StateError as exc:
                raise WorkerError(str(exc), EXIT_USAGE) from exc
            if identity is None:
                raise WorkerError(
                    f"this machine is not enrolled (no {self.paths.identity}); run rampart-agent enroll", EXIT_USAGE
                )
            self._identity = identity
        return self._identity

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            try:
                self._spool = Spool(self.paths.spool, self.config.spool_max_bytes)
            except (SpoolError, OSError) as exc:
                raise WorkerError(str(exc)) from exc
        return self._spool

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            identity = self.identity
            try:
                check_key_permissions(self.paths.key)
                key = wire.load_private_key_pem(self.paths.key.read_bytes())
            except (StateError, OSError, ValueError, wire.WireError) as exc:
                raise WorkerError(f"cannot use the agent key {self.paths.key}: {exc}", EXIT_USAGE) from exc
            if wire.agent_id_for(key) != identity.agent_id:
                raise WorkerError(f"{self.paths.key} is not the key of {identity.agent_id}; re-enrol", EXIT_USAGE)
            verify: str | bool = self.config.ca_cert or identity.ca_cert or True
            self._transport = Transport(
                self.config.collector_url or identity.collector_url,
                verify=verify,
                agent_id=identity.agent_id,
                key=key,
                connect_timeout_s=self.config.seconds("connect_timeout"),
                read_timeout_s=self.config.seconds("read_timeout"),
                clock_offset_s=float(self.spool.get("clock_offset_s", 0) or 0),
                user_agent=f"rampart-agent/{__version__}",
                retry_after_max_s=self.config.seconds("retry_after_max"),
            )
        return self._transport

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.config.request_attempts,
            backoff=Backoff(self.config.seconds("backoff_initial"), self.config.seconds("backoff_max")),
            retry_after_max_s=self.config.seconds("retry_after_max"),
        )

    def policy_cache(self) -> PolicyCache:
        return PolicyCache(self.paths, self.identity.collector_public_key, self.identity.agent_id)

    def close(self) -> None:
        if self._transport is not None:
            if self._transport.clock_updated and self._spool is not None:
                self._spool.set(clock_offset_s=self._transport.clock_offset_s)
            self._transport.close()
        if self._spool is not None:
            self._spool.close()

    # --- pieces ----------------------------------------------------------------------------------------

    def current_bundle(self) -> Bundle | None:
        try:
            return self.policy_cache().load()
        except PolicyRefused as exc:
            log.error("%s; no checks run until the collector sends a good bundle", exc)
            self.summary["policy_error"] = str(exc)
            return None

    def sync_policy(self, current: Bundle | None) -> Bundle | None:
        """Fetch the bundle if it changed; keep the last good one when the collector is away or sends a bad one."""
        headers = {"If-None-Match": f'"{current.etag}"'} if current is not None and current.etag else None
        deadline = time.monotonic() + self.config.seconds("delivery_budget")
        try:
            answer = self.transport.call(
                "GET", POLICY_PATH, retry=self.retry_policy(), deadline=deadline, headers=headers
            )
        except AgentRefused:
            raise
        except CollectorError as exc:
            log.warning("policy not refreshed: %s; keeping %s", exc.message, current.describe() if current else "none")
            return current
        if answer.status == 304:
            return current
        try:
            bundle = self.policy_cache().accept(answer.body, current)
        except PolicyRefused as exc:
            log.error("%s; keeping %s", exc, current.describe() if current else "no policy")
            self.spool.set(policy_error=str(exc), policy_error_at=time.time())
            self.summary["policy_error"] = str(exc)
            return current
        self.spool.set(policy_error=None, policy_error_at=None, policy_etag=bundle.etag)
        self.summary["policy_changed"] = current is None or current.etag != bundle.etag
        log.info("policy bundle in force: %s", bundle.describe())
        return bundle

    def checkin(self) -> Bundle | None:
        from agent.hostinfo import host_facts

        current = self.current_bundle()
        deadline = time.monotonic() + self.config.seconds("delivery_budget")
        answer = self.transport.call(
            "POST", CHECKIN_PATH, payload={"host": host_facts()}, retry=self.retry_policy(), deadline=deadline
        )
        self.spool.set(last_checkin_at=time.time(), refused=None)
        body = answer.body if isinstance(answer.body, dict) else {}
        wanted = body.get("policy_etag")
        if current is None or wanted != current.etag:
            return self.sync_policy(current)
        return current

    def run_checks(self, bundle: Bundle | None, only: set[str] | None) -> None:
        from agent.hostinfo import host_facts
        from agent.runner import run_checks

        started = time.time()
        if bundle is None:
            log.warning("no policy bundle yet: nothing to check")
            self.summary["results"] = 0
            return
        host = host_facts()
        results = run_checks(
            bundle,
            agent_id=self.identity.agent_id,
            hostname=host["hostname"],
            config=self.config,
            only=only,
            cache_dir=str(self.paths.probe_cache),
        )
        reports = self.reports([r.to_dict() for r in results], host)
        added = self.spool.add(reports)
        counts = Counter(r.status.value for r in results)
        self.spool.set(
            last_run_at=started,
            last_run_results=len(results),
            last_run_counts=json.dumps(dict(counts), sort_keys=True),
            last_run_policy_etag=bundle.etag,
        )
        if added.dropped_results:
            log.warning("spool full: dropped the %d oldest undelivered results", added.dropped_results)
        self.summary.update(results=len(results), counts=dict(counts), spooled=added.added)
        self.summary["dropped_now"] = added.dropped_results

    def reports(self, results: list[dict[str, Any]], host: dict[str, Any]) -> list[dict[str, Any]]:
        """Split a run's results into reports within the configured count and size."""
        reports: list[dict[str, Any]] = []
        chunk: list[dict[str, Any]] = []
        size = 0
        limit = self.config.report_max_bytes - 2048  # room for the envelope
        for result in results:
            length = len(json.dumps(result, separators=(",", ":")))
            if chunk and (len(chunk) >= self.config.report_max_results or size + length > limit):
                reports.append(wire.make_report(agent_id=self.identity.agent_id, results=chunk, host=host))
                chunk, size = [], 0
            chunk.append(result)
            size += length + 1
        if chunk:
            reports.append(wire.make_report(agent_id=self.identity.agent_id, results=chunk, host=host))
        return reports

    def deliver(self, *, force: bool = False) -> DeliveryOutcome:
        drain = Drain(
            spool=self.spool,
            transport=self.transport,
            retry=self.retry_policy(),
            between_deliveries=Backoff(self.config.seconds("backoff_initial"), self.config.seconds("backoff_max")),
            drain_rate=self.config.drain_rate,
            budget_s=self.config.seconds("delivery_budget"),
            lock=FileLock(self.paths.delivery_lock),
        )
        outcome = drain.run(force=force)
        self.summary.update(
            delivered=outcome.delivered,
            duplicates=outcome.duplicates,
            rejected=outcome.rejected,
            pending=outcome.pending,
            next_attempt_at=outcome.next_attempt_at,
        )
        if outcome.skipped:
            self.summary["delivery_skipped"] = outcome.skipped
        if outcome.error:
            self.summary["delivery_error"] = outcome.error
        if outcome.refused:
            self.summary["refused"] = True
        return outcome

    # --- tasks -----------------------------------------------------------------------------------------

    def task_plan(self) -> int:
        config = self.config
        identity = None
        try:
            identity = read_identity(self.paths)
        except StateError as exc:
            raise WorkerError(str(exc), EXIT_USAGE) from exc
        jobs: dict[float, list[str]] = {}
        bundle = self.current_bundle() if identity is not None else None
        if bundle is not None:
            from agent.runner import schedule

            for planned in schedule(bundle, config):
                jobs.setdefault(planned.interval_s, []).append(planned.key)
        self.summary.update(
            enrolled=identity is not None,
            agent_id=identity.agent_id if identity else None,
            policy_etag=bundle.etag if bundle else None,
            jobs=[{"interval_s": interval, "checks": keys} for interval, keys in sorted(jobs.items())],
            checkin_interval_s=config.seconds("checkin_interval"),
            splay_s=config.seconds("splay"),
            jitter_s=config.seconds("jitter"),
            run_timeout_s=config.seconds("run_timeout"),
            log_level=config.log_level,
        )
        return EXIT_OK

    def task_checkin(self) -> int:
        try:
            self.checkin()
        except AgentRefused as exc:
            self.spool.set(refused=exc.code or "refused", last_delivery_error=exc.message)
            raise WorkerError(exc.message) from exc
        except CollectorError as exc:
            log.warning("check-in failed: %s", exc.message)
            self.summary["checkin_error"] = exc.message
        outcome = self.deliver()
        return EXIT_OK if not outcome.error and not outcome.refused and "checkin_error" not in self.summary else 1

    def task_run(self, only: set[str] | None) -> int:
        self.run_checks(self.current_bundle(), only)
        outcome = self.deliver()
        return EXIT_OK if outcome.ok or (outcome.skipped and not outcome.refused) else EXIT_FAILED

    def task_deliver(self) -> int:
        return EXIT_OK if self.deliver().ok else EXIT_FAILED

    def task_once(self) -> int:
        # Said before each step: a collector that is down or out of reach makes each one wait (attempts,
        # back-off, connect timeouts), and someone at a terminal must see what for.
        attempts = self.config.request_attempts
        log.info("checking in with %s (up to %d attempts)", self.transport.base_url, attempts)
        try:
            bundle = self.checkin()
        except AgentRefused as exc:
            self.spool.set(refused=exc.code or "refused", last_delivery_error=exc.message)
            raise WorkerError(exc.message) from exc
        except CollectorError as exc:
            log.warning("check-in failed: %s; running with the cached policy", exc.message)
            self.summary["checkin_error"] = exc.message
            bundle = self.current_bundle()
        self.run_checks(bundle, None)
        log.info("delivering to %s (up to %d attempts)", self.transport.base_url, attempts)
        outcome = self.deliver(force=True)
        if outcome.pending:
            log.error("%d report(s) not delivered; they stay in the spool", outcome.pending)
        return EXIT_OK if outcome.ok else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agent.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--checks", metavar="KEYS", help="comma-separated policy/check keys (task run)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="json or text (default: log_format from the config)")
    parser.add_argument(
        "--parent-pipe",
        action="store_true",
        help="stdin is a pipe the starting process holds open: stop when it closes (that process is gone)",
    )
    return parser


def _on_sigterm(signum: int, frame: object) -> None:
    # Unwind through `finally` blocks: open transactions roll back, the spool closes cleanly.
    raise SystemExit(128 + signum)


PARENT_GONE_GRACE_S = 20.0


def _watch_parent(stdin_fd: int, grace_s: float = PARENT_GONE_GRACE_S) -> None:
    """Stop this worker when the process that started it is gone (SIGKILLed, crashed), rather than run on
    as an orphan: the parent holds the only write end of our stdin, so end of file means it has ended.

    The worker is told to stop as by SIGTERM (what it committed stays committed); if it has not ended
    within the grace period, it ends at once.
    """

    def watch() -> None:
        try:
            while os.read(stdin_fd, 4096):
                pass
        except OSError:
            pass
        logging.raiseExceptions = False  # the parent's stderr may be gone as well: no tracebacks about it
        log.warning("the agent process that started this worker is gone; stopping")
        if os.name == "posix":
            os.kill(os.getpid(), signal.SIGTERM)
        else:  # pragma: no cover - Windows: no signal to send ourselves; the same handler, in the main thread
            import _thread

            _thread.interrupt_main(signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(EXIT_FAILED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _print_summary(summary: dict[str, Any]) -> None:
    """The last line the daemon reads; if it is gone and the pipe with it, there is no one to tell."""
    try:
        print(json.dumps(summary, sort_keys=True), flush=True)
    except (BrokenPipeError, ValueError):
        # Later flushes (at exit) would fail the same way: send what is left nowhere.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.parent_pipe:
        _watch_parent(sys.stdin.fileno())
    started = time.monotonic()
    summary: dict[str, Any] = {"task": args.task}
    code = EXIT_OK
    worker: Worker | None = None
    try:
        config = load_agent_config(args.config)
        # The daemon's format (checks/logformat.py), timestamps included; reported so the daemon follows it.
        summary["log_format"] = args.log_format or config.log_format
        log_to_stderr(config.log_level, summary["log_format"])
        worker = Worker(config)
        worker.summary = summary
        if args.task == "plan":
            code = worker.task_plan()
        elif args.task == "checkin":
            code = worker.task_checkin()
        elif args.task == "run":
            only = {key.strip() for key in args.checks.split(",") if key.strip()} if args.checks else None
            code = worker.task_run(only)
        elif args.task == "deliver":
            code = worker.task_deliver()
        else:
            code = worker.task_once()
    except ConfigError as exc:
        summary["error"] = str(exc)
        print(f"rampart-agent: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except WorkerError as exc:
        summary["error"] = str(exc)
        print(f"rampart-agent: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except (sqlite3.Error, OSError) as exc:  # e.g. a full disk: say so; what was committed stays committed
        summary["error"] = f"{type(exc).__name__}: {exc}"
        print(f"rampart-agent: error: {summary['error']}", file=sys.stderr)
        code = EXIT_FAILED
    except Exception as exc:  # a bug: the traceback for the log, the summary for the daemon
        log.exception("worker %s failed", args.task)
        summary["error"] = f"internal error: {type(exc).__name__}: {exc}"
        code = EXIT_FAILED
    finally:
        if worker is not None:
            worker.close()
    summary.update(ok=code == EXIT_OK, exit_code=code, duration_s=round(time.monotonic() - started, 3), **_rusage())
    _print_summary(summary)
    return code


if __name__ == "__main__":
    sys.exit(main())
