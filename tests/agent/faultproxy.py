"""A fault-injecting HTTPS proxy to put in front of the real collector in tests.

It terminates TLS with its own test CA (which the agent under test pins), forwards every request to the
real collector over TLS, and on demand answers in the collector's place with a status and headers (429/503
with Retry-After), holds a forwarded answer back (so the agent can be killed after the collector stored a
report but before the agent heard so), or rewrites a response body (a tampered policy bundle). It records
what passed, with timestamps, so tests can check pacing.

This is not a fake collector: every request it does not fault is answered by the real one.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rampart test proxy CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "proxy-ca.pem", directory / "proxy.pem", directory / "proxy.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


@dataclass
class Fault:
    """Answer `count` matching requests with `status` instead of forwarding them.

    `body` is JSON, raw bytes (a proxy's HTML page), or a function of the request's body (to answer about
    the report that was sent)."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | list[Any] | bytes | Callable[[bytes], bytes] = field(
        default_factory=lambda: {"code": "overloaded", "message": "injected by test"}
    )
    count: int = 1
    content_type: str = "application/json"

    def payload(self, request_body: bytes) -> bytes:
        if callable(self.body):
            return self.body(request_body)
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class Hold:
    """Forward matching requests (the collector acts on them) and hold the answer back for `seconds`."""

    method: str
    path: str
    seconds: float
    count: int = 1
    forwarded: threading.Event = field(default_factory=threading.Event)


@dataclass
class Seen:
    method: str
    path: str
    at: float
    status: int
    faulted: bool
    body: bytes


class FaultProxy:
    def __init__(self, upstream: str, upstream_ca: Path | str, directory: Path) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 443
        self.upstream_context = ssl.create_default_context(cafile=str(upstream_ca))
        self.ca, cert, key = make_test_ca(directory)
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.tamper: Callable[[str, str, bytes], bytes] | None = None
        self.strip_if_none_match = False  # make the collector send the whole bundle, for `tamper` to change
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take(self, rules: list[Any], method: str, path: str) -> Any:
        with self.lock:
            for rule in rules:
                if rule.method == method and path.startswith(rule.path) and rule.count > 0:
                    rule.count -= 1
                    return rule
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        method, path = request.command, request.path
        fault = self._take(self.faults, method, path)
        if fault is not None:
            payload = fault.payload(body)
            self._reply(request, fault.status, {**fault.headers, "Content-Type": fault.content_type}, payload)
            self._record(method, path, fault.status, True, body)
            return
        connection = http.client.HTTPSConnection(
            self.upstream_host, self.upstream_port, context=self.upstream_context, timeout=60
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        if self.strip_if_none_match:
            headers = {k: v for k, v in headers.items() if k.lower() != "if-none-match"}
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
            answer_headers = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
        except OSError:
            self._record(method, path, 502, False, body)
            request.close_connection = True
            return
        finally:
            connection.close()
        self._record(method, path, status, False, body)
        hold = self._take(self.holds, method, path)
        if hold is not None:
            hold.forwarded.set()
            time.sleep(hold.seconds)
        if self.tamper is not None:
            answer = self.tamper(method, path, answer)
        try:
            self._reply(request, status, answer_headers, answer)
        except OSError:
            request.close_connection = True  # the agent went away while we held the answer

    def _record(self, method: str, path: str, status: int, faulted: bool, body: bytes) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, time.time(), status, faulted, body))

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
        request.wfile.flush()

    def requests(self, method: str, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and s.path.startswith(path)]
