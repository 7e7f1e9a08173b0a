"""tests/agent/faultproxy.py's proxy with the faults the reliability suite adds: raw answers that are not
the collector's (a non-JSON 200 from a captive portal or a misconfigured balancer, a 500 page in HTML),
given before or after the collector acted on the request, and a slow collector (the answer held back
past the agent's read timeout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.agent.faultproxy import FaultProxy, Hold, Seen


@dataclass
class RawAnswer:
    """Answer `count` matching requests with exactly these bytes; `forward_first`: only after the
    collector has acted on the request (its own answer is thrown away)."""

    method: str
    path: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    forward_first: bool = False
    count: int = 1


class ReliabilityProxy(FaultProxy):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.raw: list[RawAnswer] = []

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        method, path = request.command, request.path
        rule: RawAnswer | None = self._take(self.raw, method, path)
        if rule is None:
            super().handle(request)
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if rule.forward_first:
            self._forward_and_discard(request, method, path, body)
        self._reply(request, rule.status, rule.headers, rule.body)
        self._record(method, path, rule.status, True, body)

    def _forward_and_discard(self, request: BaseHTTPRequestHandler, method: str, path: str, body: bytes) -> None:
        import http.client

        connection = http.client.HTTPSConnection(
            self.upstream_host, self.upstream_port, context=self.upstream_context, timeout=60
        )
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection", "content-length")
        }
        try:
            connection.request(method, path, body=body or None, headers=headers)
            connection.getresponse().read()
        finally:
            connection.close()

    def answered(self, method: str, path: str) -> list[Seen]:
        return self.requests(method, path)


__all__ = ["Hold", "RawAnswer", "ReliabilityProxy"]
