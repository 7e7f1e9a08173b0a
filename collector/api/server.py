"""The HTTP server under the collector: uvicorn, with the limits a server facing a fleet needs.

uvicorn (0.54 here) offers a keep-alive timeout (`timeout_keep_alive`, armed only after a response), a
concurrency limit (`limit_concurrency`, 503 beyond it) and, for its pure-Python h11 parser only, a limit on
incomplete headers. With httptools (the fast parser, used for ingest) a connection that sends nothing, or
headers without end, is kept for ever, and its headers are buffered without bound. `GuardedHttpToolsProtocol`
adds what is missing, per connection:

- idle: a connection with no request in progress (just opened, or after a response) is closed after
  `idle_timeout_s`; stray bytes that begin no request do not extend it. It is aborted rather than closed:
  a TLS close would wait up to 30 s for the peer's close_notify, holding the file descriptor.
- headers: a request's headers (with its request line) must be complete within `header_timeout_s` of
  its first byte and within `max_header_bytes`; otherwise 408 or 431 and the connection is closed. Headers
  still incomplete are counted a read at a time as they arrive, so no more than the limit and one read
  (at most 256 KiB) is ever kept of them.
- body: a response sent before the request's body was all received closes the connection (its rest is
  never read). The time to read a body is bounded by the application (`body_timeout_s`, 408: see
  collector/api/app.py), which can still answer with a proper error.
- one write per response: uvicorn writes a response's status line and headers, then its body, each a
  TLS record and a send of its own; the head is held until the body's first write and leaves with it
  (`HeadWithBody`), which halves the records and sends of the answer to every report.

A TLS handshake that never completes is ended by the event loop after 60 s (asyncio's and uvloop's
default; uvicorn exposes no setting); such connections are not yet HTTP connections.

`server_config(...)` builds the uvicorn configuration `serve` and the tests use, `run(...)` serves it in
this process or in `workers` processes, as `uvicorn.run` would.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from checks.config import ConfigError
from collector.config import CollectorConfig

log = logging.getLogger("rampart.collector.server")
PROTOCOL = "collector.api.server:GuardedHttpToolsProtocol"
REFUSAL_GRACE_S = 2.0


class HeadWithBody:
    """The transport of one request's response cycle: the status line and headers uvicorn writes first are
    held, and written with the first write that follows (the body, or its first chunk); a close or an
    abort comes after the head, never before it. Anything else goes to the connection's transport."""

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._held = False  # the head has been held once (later writes go straight through)

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif not self._held and self._cycle.response_started:  # the head (a 100 Continue comes before it)
            self._head, self._held = data, True
            return
        self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True)
class ServerLimits:
    idle_timeout_s: float = 5.0
    header_timeout_s: float = 10.0
    max_header_bytes: int = 32 * 1024


class CollectorServerConfig(uvicorn.Config):
    """uvicorn's configuration and the limits of `GuardedHttpToolsProtocol` (pickled with it into workers)."""

    def __init__(self, app: Any, *, limits: ServerLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.limits = limits


def _raw_response(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message
    )


HEADER_TIMEOUT = _raw_response(
    b"408 Request Timeout", b'{"code": "header_timeout", "message": "the request headers took too long"}'
)
HEADERS_TOO_LARGE = _raw_response(
    b"431 Request Header Fields Too Large",
    b'{"code": "headers_too_large", "message": "the request headers are too large"}',
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with idle and header timeouts and a header size limit (see above)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = getattr(config, "limits", None)
        self.limits: ServerLimits = limits if isinstance(limits, ServerLimits) else ServerLimits()
        self.timeout_keep_alive = self.limits.idle_timeout_s  # type: ignore[assignment]
        self._begun = 0  # requests whose first byte arrived
        self._answered = 0  # responses completed
        self._headers_open = False  # between a request's first byte and the end of its headers
        self._headers_completed = 0
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._idle_deadline: float | None = None
        self._refused = False  # answered by the protocol itself: nothing more is parsed

    # Idle: from the connection or the last response to the next request's first byte.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_idle(self.limits.idle_timeout_s)

    def _arm_idle(self, delay: float) -> None:
        self._unset_keepalive_if_required()
        self._idle_deadline = time.monotonic() + delay
        self.timeout_keep_alive_task = self.loop.call_later(max(delay, 0.0), self.timeout_keep_alive_handler)

    def timeout_keep_alive_handler(self) -> None:
        # Aborted, not closed: a TLS close waits (up to 30 s) for the peer's close_notify, holding the file
        # descriptor, and an idle connection has nothing left to send.
        if not self.transport.is_closing():
            self.transport.abort()

    def on_response_complete(self) -> None:
        self._answered += 1
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            # Answered before its body was all received (a refusal): the rest is never read.
            self.transport.close()
            return
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:
            self._idle_deadline = time.monotonic() + self.limits.idle_timeout_s

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        idle_deadline = self._idle_deadline if self.timeout_keep_alive_task is not None else None
        awaiting_before = self._awaiting_headers()
        completed_before = self._headers_completed
        super().data_received(data)  # cancels the idle timer, parses
        if self.transport.is_closing():
            return
        if idle_deadline is not None and self._begun == self._answered and not self._headers_open:
            # Bytes that began no request (empty lines) do not keep a connection open.
            self._arm_idle(idle_deadline - time.monotonic())
        if awaiting_before and self._headers_open and self._headers_completed == completed_before:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(HEADERS_TOO_LARGE)

    def _awaiting_headers(self) -> bool:
        return self._headers_open or self._begun == self._answered

    # Headers: from a request's first byte to the end of its headers.

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._begun += 1
        self._headers_open = True
        self._header_bytes = 0
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._refuse, HEADER_TIMEOUT)

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._headers_open = False
        self._headers_completed += 1
        self._cancel_header_timer()
        # Headers that arrived whole in one read were not counted as they came: count them now.
        size = len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(HEADERS_TOO_LARGE)
            return
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A HEAD response has no body to carry its head; an upgrade made no cycle.
        if cycle is not None and cycle is not before and self.scope["method"] != "HEAD":
            # Not a Transport subclass: its methods would shadow the delegation of the ones not written here.
            cycle.transport = cast(asyncio.Transport, HeadWithBody(self.transport, cycle))

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, response: bytes) -> None:
        self._cancel_header_timer()
        if self.transport.is_closing() or self._refused:
            return
        self._refused = True
        # While an earlier request of this connection is being answered, its response must not be broken.
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(response)
        self.transport.pause_reading()  # nothing more of it is read
        self.transport.close()
        # The answer has had its chance to leave; a peer that never ends the TLS session holds nothing.
        self.loop.call_later(REFUSAL_GRACE_S, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def trusted_proxies(config: CollectorConfig) -> list[str]:
    """The addresses and networks whose X-Forwarded-For is believed; ConfigError for a malformed one."""
    for entry in config.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"collector.trusted_proxies: {entry!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
            ) from None
    return list(config.trusted_proxies)


def server_config(
    config: CollectorConfig,
    app: Any,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    plain_http: bool = False,
    **options: Any,
) -> CollectorServerConfig:
    """uvicorn's configuration for the collector: TLS, limits, and the client address taken from
    X-Forwarded-For only when the connection comes from one of `trusted_proxies`."""
    cert, key, _ca = config.tls_paths()
    proxies = trusted_proxies(config)
    settings: dict[str, Any] = {
        "host": host or config.listen_host,
        "port": config.listen_port if port is None else port,
        "workers": workers,
        "http": PROTOCOL,
        "ws": "none",
        "ssl_certfile": None if plain_http else str(cert),
        "ssl_keyfile": None if plain_http else str(key),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": config.idle_timeout_s,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": config.max_connections,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        **options,
    }
    limits = ServerLimits(
        idle_timeout_s=float(config.idle_timeout_s),
        header_timeout_s=float(config.header_timeout_s),
        max_header_bytes=config.max_header_bytes,
    )
    return CollectorServerConfig(app, limits=limits, **settings)


def run(server: CollectorServerConfig) -> bool:
    """Serve until stopped, in this process or in `workers` processes (as `uvicorn.run` does); False when
    the server could not start."""
    from uvicorn.supervisors import Multiprocess

    instance = uvicorn.Server(server)
    if server.workers > 1:
        sock = server.bind_socket()
        Multiprocess(server, sockets=[sock]).run()
        return True
    instance.run()
    return instance.started


def raise_open_file_limit(wanted: int) -> None:
    """Each connection holds a file descriptor: make the soft limit room for `wanted` of them (and the
    database, logs and listening socket), up to the hard limit; warn when even that is too low."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open file limit below max_connections",
            extra={"open_file_limit": soft, "max_connections": wanted},
        )
