"""A response leaves in one write: its head held until its body (collector/api/server.py, HeadWithBody).

Shown over TLS, where one write is one record and one `recv` returns at most one record: the first
`recv` after a request holds the whole response, head and body, on every request of a kept-alive
connection. A HEAD request, whose response has no body to carry its head, is still answered.
"""

from __future__ import annotations

import selectors
import ssl

from tests.collector.test_server_limits import BOUND_S, tls_connect
from tests.support.live import LiveCollector


def first_record(sock: ssl.SSLSocket) -> bytes:
    """What the first TLS record after a request holds (waits for it, within BOUND_S)."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        assert selector.select(timeout=BOUND_S) or sock.pending(), "no answer"
    sock.settimeout(BOUND_S)
    return sock.recv(65536)


def test_each_response_of_a_kept_alive_connection_is_one_record(live: LiveCollector) -> None:
    sock = tls_connect(live.url, live.ca_file)
    try:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
            record = first_record(sock)
            head, _, body = record.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), record
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
            assert length > 0 and len(body) == length, record  # the body came in the same record
    finally:
        sock.close()


def test_a_head_request_gets_its_head(live: LiveCollector) -> None:
    sock = tls_connect(live.url, live.ca_file)
    try:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        record = first_record(sock)
        assert record.startswith(b"HTTP/1.1 ") and record.endswith(b"\r\n\r\n"), record  # 405: GET only
    finally:
        sock.close()
