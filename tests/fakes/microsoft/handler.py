"""The request handler's plumbing and token check, under the routes of sign-in, Graph and ARM."""

from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.microsoft.wire import Reply

if TYPE_CHECKING:
    from tests.fakes.microsoft.server import FakeMicrosoft


class HandlerBase(BaseHTTPRequestHandler):
    """The plumbing every route shares: one JSON (or HTML) reply per request, each recorded."""

    owner: FakeMicrosoft
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms to each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # plumbing

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        html = body.get("__html__") if isinstance(body, dict) else None  # a page (the sign-in service's)
        data = html.encode() if isinstance(html, str) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.owner.lock:
            self.owner.in_flight += 1
        try:
            status, body, headers = self._route(method, path, query)
        except Exception as exc:  # a bug in the fake must show, not hang the client
            status, body, headers = 500, {"error": {"code": "FakeBug", "message": repr(exc)}}, {}
        finally:
            with self.owner.lock:
                self.owner.in_flight -= 1
        self.owner.record(method, path, parts.query, status)
        self._send(status, body, headers)

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        # Overridden by the server's handler, which knows every route (server.py).
        raise NotImplementedError

    # Graph and ARM: the token must be one the fake issued, for that API, not expired.

    def _bearer(self, audience: str) -> bool:
        value = self.headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            return False
        with self.owner.lock:
            entry = self.owner.tokens.get(value[len("Bearer ") :])
        return entry is not None and entry[1] == audience and entry[2] > time.time()
