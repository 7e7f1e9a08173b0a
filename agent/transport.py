"""Signed HTTPS requests to the collector (docs/protocol.md), with retries that respect the collector.

- TLS is verified with the CA the agent's config or enrolment names, passed explicitly on every request,
  in a session that ignores the environment (REQUESTS_CA_BUNDLE, proxies), so the pin cannot be undone
  by a variable.
- Every request is signed at send time with a timestamp corrected by the clock offset measured from the
  collector's `X-Rampart-Time`; a `stale_timestamp` refusal corrects the offset and re-signs once.
- Connection failures, timeouts and 5xx are retried with exponential backoff and jitter; 429 and 503
  wait exactly as long as `Retry-After` says. A wait that would overrun the caller's deadline ends the
  attempt instead, with the wait the collector asked for, so the next worker starts no earlier.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checks import wire
from checks.backoff import Backoff, parse_retry_after

log = logging.getLogger("rampart.agent.transport")

HEADER_SERVER_TIME = "X-Rampart-Time"
HEADER_CLOCK_SKEW = "X-Rampart-Clock-Skew"
USER_AGENT_PREFIX = "rampart-agent/"


class CollectorError(Exception):
    """A request did not succeed. `code` is the collector's stable error code (or ours for transport)."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after_s: float | None = None


class Unreachable(CollectorError):
    """No answer: connection refused, DNS, TLS failure, timeout."""

    retryable = True


class TlsFailure(CollectorError):
    """The collector's certificate does not verify with the pinned CA: retrying at once will not help."""


class ServerError(CollectorError):
    """5xx (or a 429/503 without a usable Retry-After): try again after a backoff."""

    retryable = True


class Throttled(CollectorError):
    """429/503 with Retry-After: the collector asked us to wait."""

    retryable = True


class Rejected(CollectorError):
    """A 4xx about this request: sending it again will not help."""


class AgentRefused(CollectorError):
    """The collector does not accept this agent any more (unknown or revoked): stop until an admin acts."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # the JSON of the answer; None when it was empty or not JSON
    etag: str | None = None
    text: str = ""  # the start of the raw body, to say what came instead of JSON

    def describe(self) -> str:
        kind = self.headers.get("Content-Type") or "no content type"
        shown = " ".join(self.text.split())[:80]
        return f"HTTP {self.status}, {kind}" + (f": {shown!r}" if shown else ", empty body")

    def header(self, name: str) -> str | None:
        """A header by name, whatever its case: HTTP names are case-insensitive, and the collector (ASGI)
        sends them in lower case (`retry-after`), a proxy in its own."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass
class RetryPolicy:
    attempts: int
    backoff: Backoff
    retry_after_max_s: float
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class Transport:
    base_url: str
    verify: str | bool
    agent_id: str
    key: Ed25519PrivateKey
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    clock_offset_s: float = 0.0
    user_agent: str = USER_AGENT_PREFIX + "0"
    time_fn: Callable[[], float] = time.time
    session: requests.Session = field(default_factory=requests.Session)
    retry_after_max_s: float = 3600.0

    def __post_init__(self) -> None:
        # The config's CA must win over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and no proxy from the environment.
        self.session.trust_env = False
        self.base_url = self.base_url.rstrip("/")
        self.clock_updated = False

    def signing_time(self) -> int:
        return int(round(self.time_fn() + self.clock_offset_s))

    def request(self, method: str, path: str, *, payload: Any = None, headers: dict[str, str] | None = None) -> Answer:
        """One signed request (re-signed once after a stale_timestamp); raises a CollectorError subclass."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        offset_used = self.clock_offset_s
        answer = self._send(method, path, body, headers)
        if answer.status == 401 and _code(answer) == "stale_timestamp":
            skew = _skew(answer)
            if skew is not None:
                # The skew is measured against the timestamp we signed with, whatever X-Rampart-Time set since.
                self.clock_offset_s = offset_used + skew
                self.clock_updated = True
                log.warning("collector says our clock is %+ds off; corrected and re-signed", skew)
                answer = self._send(method, path, body, headers)
        return self._classify(answer)

    def _send(self, method: str, path: str, body: bytes, extra: dict[str, str] | None) -> Answer:
        url_path = urlsplit(self.base_url + path).path
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        headers.update(wire.sign_request(self.key, self.agent_id, method, url_path, body, self.signing_time()))
        sent_at = self.time_fn()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                data=body or None,
                headers=headers,
                timeout=(self.connect_timeout_s, self.read_timeout_s),
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise TlsFailure(f"TLS failure talking to {self.base_url}: {_short(exc)}", code="tls") from exc
        except requests.exceptions.Timeout as exc:
            raise Unreachable(f"timed out talking to {self.base_url}", code="timeout") from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {_short(exc)}", code="unreachable") from exc
        received_at = self.time_fn()
        self._note_server_time(response.headers.get(HEADER_SERVER_TIME), (sent_at + received_at) / 2)
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        snippet = response.content[:200].decode("utf-8", "replace")
        return Answer(response.status_code, dict(response.headers), parsed, response.headers.get("ETag"), snippet)

    def _note_server_time(self, value: str | None, local_midpoint: float) -> None:
        """Keep the offset to the collector's clock; whole seconds, so ignore differences under two."""
        if not value:
            return
        try:
            server_time = float(value)
        except ValueError:
            return
        measured = server_time - local_midpoint
        if abs(measured - self.clock_offset_s) >= 2:
            self.clock_offset_s = float(round(measured))
            self.clock_updated = True

    def _classify(self, answer: Answer) -> Answer:
        status = answer.status
        if 200 <= status < 300 or status == 304:
            return answer
        code = _code(answer)
        message = _message(answer) or f"HTTP {status}"
        if status in (429, 503):
            wait = parse_retry_after(answer.header("Retry-After"), self.time_fn(), self.retry_after_max_s)
            if wait is not None:
                error: CollectorError = Throttled(
                    f"collector asked to wait {wait:.0f}s ({message})", code=code, status=status
                )
                error.retry_after_s = wait
                raise error
            raise ServerError(f"collector overloaded: {message}", code=code, status=status)
        if status >= 500:
            raise ServerError(f"collector error {status}: {message}", code=code, status=status)
        if code in ("unknown_agent", "agent_revoked"):
            raise AgentRefused(f"the collector refuses this agent: {message}", code=code, status=status)
        text = f"collector refused the request ({status} {code or 'error'}): {message}"
        raise Rejected(text, code=code, status=status)

    def call(
        self,
        method: str,
        path: str,
        *,
        retry: RetryPolicy,
        deadline: float | None = None,
        payload: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """`request` with retries of what may succeed later, within `deadline` (a monotonic time)."""
        attempt = 0
        while True:
            try:
                return self.request(method, path, payload=payload, headers=headers)
            except CollectorError as exc:
                if not exc.retryable:
                    raise
                attempt += 1
                wait = exc.retry_after_s if exc.retry_after_s is not None else retry.backoff.delay(attempt - 1)
                if attempt >= retry.attempts:
                    raise
                if deadline is not None and retry.monotonic() + wait > deadline:
                    exc.retry_after_s = wait
                    raise
                # Said at warning level: without it `run --once` against a collector that is down sits
                # silent through every attempt of the check-in and then of the delivery (20 s and more).
                log.warning(
                    "waiting for the collector (%s %s%s): %s; attempt %d of %d failed, next try in %.1fs",
                    method,
                    self.base_url,
                    path,
                    exc.message,
                    attempt,
                    retry.attempts,
                    wait,
                )
                retry.sleep(wait)

    def close(self) -> None:
        self.session.close()


def _code(answer: Answer) -> str:
    return str(answer.body.get("code", "")) if isinstance(answer.body, dict) else ""


def _message(answer: Answer) -> str:
    return str(answer.body.get("message", "")) if isinstance(answer.body, dict) else ""


def _skew(answer: Answer) -> int | None:
    raw = answer.body.get("clock_skew_s") if isinstance(answer.body, dict) else None
    if raw is None:
        raw = answer.header(HEADER_CLOCK_SKEW)
    try:
        return int(float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


_REASONS = (
    re.compile(r"certificate verify failed: ([^(\"']+)"),
    re.compile(r"\[Errno -?[0-9]+\] ([^\"')]+)"),
    re.compile(r"(Name or service not known|Temporary failure in name resolution|Connection reset by peer)"),
)


def _short(exc: BaseException) -> str:
    """The cause people can act on ("Connection refused"), not urllib3's nested reprs."""
    text = str(exc)
    for pattern in _REASONS:
        match = pattern.search(text)
        if match:
            return match.group(1).strip().rstrip(".")
    return text if len(text) <= 200 else text[:200] + "..."
