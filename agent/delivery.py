"""Draining the spool to the collector: oldest first, one report at a time, at a bounded rate.

A report leaves the spool only once the collector acknowledged it (stored, or already stored: a
duplicate), and only with the documented acknowledgement: a 2xx answer whose JSON body names that report
id with `"stored": true` (docs/protocol.md). Anything else that comes back with a 2xx (a proxy's
maintenance page, an empty body, JSON about another report) is a failed delivery: the report stays, the
reason is logged and kept for `rampart-agent status`, and the next attempt backs off.

After a failed delivery the next attempt waits on an exponential schedule with jitter (or the
collector's Retry-After), kept in the spool so every later worker honours it; a backlog after an outage
drains at most `drain_rate` reports per second, so a fleet coming back does not flood the collector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.lock import FileLock
from agent.spool import Spool
from agent.transport import AgentRefused, Answer, CollectorError, Rejected, RetryPolicy, Transport
from checks.backoff import Backoff

log = logging.getLogger("rampart.agent.delivery")

REPORTS_PATH = "/api/v1/reports"
LOCKED_RETRY_S = 60.0
# Refusals about how a request was signed, not about the report: keep the report and try again later.
_AUTH_CODES = {"unsigned", "bad_timestamp", "bad_digest", "bad_signature", "stale_timestamp", "bad_encoding"}


def acknowledgement_problem(answer: Answer, report_id: str) -> str | None:
    """Why a 2xx answer is not the collector's acknowledgement of `report_id`; None when it is."""
    body = answer.body
    if not isinstance(body, dict):
        return f"the answer to report {report_id} is not the collector's acknowledgement ({answer.describe()})"
    if body.get("report_id") != report_id:
        named = body.get("report_id")
        which = "names no report" if named is None else f"names report {str(named)[:80]!r}"
        return f"the answer to report {report_id} {which} ({answer.describe()}); not acknowledged"
    if body.get("stored") is not True:
        return f"the collector did not say it stored report {report_id} ({answer.describe()}); not acknowledged"
    return None


@dataclass
class DeliveryOutcome:
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    pending: int = 0
    error: str = ""
    refused: bool = False
    skipped: str = ""
    next_attempt_at: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error and not self.refused and self.pending == 0


@dataclass
class Drain:
    spool: Spool
    transport: Transport
    retry: RetryPolicy
    between_deliveries: Backoff
    drain_rate: float
    budget_s: float
    lock: FileLock
    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self, *, force: bool = False) -> DeliveryOutcome:
        outcome = DeliveryOutcome()
        refused = self.spool.get("refused")
        if refused and not force:
            # Unknown or revoked: sending is pointless until a check-in succeeds again (or the admin re-enrols).
            outcome.skipped = f"the collector refuses this agent ({refused})"
            outcome.refused = True
            outcome.pending = self.spool.stats().reports
            return outcome
        not_before = float(self.spool.get("next_attempt_at", 0) or 0)
        if not force and self.now() < not_before and self.spool.oldest() is not None:
            outcome.skipped = f"waiting until {time.strftime('%H:%M:%S', time.localtime(not_before))} (backoff)"
            outcome.next_attempt_at = not_before
            outcome.pending = self.spool.stats().reports
            return outcome
        if not self.lock.acquire():
            outcome.skipped = "another process is delivering"
            outcome.pending = self.spool.stats().reports
            outcome.next_attempt_at = self.now() + LOCKED_RETRY_S  # look again later, not in a tight loop
            return outcome
        try:
            self._drain(outcome)
        finally:
            self.lock.release()
        outcome.pending = self.spool.stats().reports
        return outcome

    def _drain(self, outcome: DeliveryOutcome) -> None:
        deadline = self.monotonic() + self.budget_s
        spacing = 1.0 / self.drain_rate
        last_sent: float | None = None
        while True:
            report = self.spool.oldest()
            if report is None:
                self.spool.set(delivery_failures=0, next_attempt_at=None, last_delivery_error=None)
                return
            if last_sent is not None:
                wait = last_sent + spacing - self.monotonic()
                if wait > 0:
                    self.sleep(wait)
            if self.monotonic() >= deadline:
                # Out of time, not a failure: the rest goes at the next attempt, without backoff.
                outcome.next_attempt_at = self.now() + spacing
                self.spool.set(next_attempt_at=None)
                return
            prepared = self.spool.prepare_send(report.seq)
            if prepared is None:
                continue
            last_sent = self.monotonic()
            try:
                answer = self.transport.call(
                    "POST", REPORTS_PATH, payload=prepared.payload(), retry=self.retry, deadline=deadline
                )
            except AgentRefused as exc:
                outcome.refused = True
                outcome.error = exc.message
                self.spool.set(refused=exc.code or "refused", last_delivery_error=exc.message)
                log.error("%s; results stay in the spool", exc.message)
                return
            except Rejected as exc:
                if exc.status == 413:
                    if self.spool.split(prepared.seq):
                        log.warning("report %s too large for the collector; split in two", prepared.report_id)
                        continue
                if exc.status in (400, 413, 422) and exc.code not in _AUTH_CODES:
                    self.spool.reject(prepared.seq, exc.message)
                    outcome.rejected += 1
                    log.error("report %s refused for good and set aside: %s", prepared.report_id, exc.message)
                    continue
                self._failed(outcome, prepared.seq, exc)
                return
            except CollectorError as exc:
                self._failed(outcome, prepared.seq, exc)
                return
            problem = acknowledgement_problem(answer, prepared.report_id)
            if problem is not None:
                self._failed(outcome, prepared.seq, CollectorError(problem, code="not_acknowledged"))
                return
            body = answer.body
            self.spool.acknowledge(prepared.seq)
            outcome.delivered += 1
            outcome.duplicates += bool(body.get("duplicate"))
            if self.spool.get("refused"):
                self.spool.set(refused=None)

    def _failed(self, outcome: DeliveryOutcome, seq: int, exc: CollectorError) -> None:
        failures = int(self.spool.get("delivery_failures", 0) or 0) + 1
        wait = self.between_deliveries.delay(failures - 1)
        if exc.retry_after_s is not None:
            wait = max(wait, exc.retry_after_s)
        outcome.error = exc.message
        outcome.next_attempt_at = self.now() + wait
        self.spool.record_error(seq, exc.message)
        self.spool.set(
            delivery_failures=failures,
            next_attempt_at=outcome.next_attempt_at,
            last_delivery_error=exc.message,
            last_delivery_error_at=self.now(),
        )
        log.warning("delivery failed (%d in a row): %s; next attempt in %.0fs", failures, exc.message, wait)
