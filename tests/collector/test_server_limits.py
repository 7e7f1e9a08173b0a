"""The collector stays up: idle, header and body limits of the HTTP server, and ingest slots that a slow or
greedy agent cannot take from the others. The server limits are shown on a real `rampart-collector serve`."""

from __future__ import annotations

import resource
import selectors
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests

from checks import wire
from collector.storage import models
from tests.support.agents import SimAgent, make_results
from tests.support.collector import RunningCollector, collector_process, init_collector
from tests.support.live import LiveCollector

BOUND_S = 30  # the most any wait here may take; the events come in a second or two


def tls_connect(url: str, ca_file: str, timeout: float = BOUND_S) -> ssl.SSLSocket:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return context.wrap_socket(raw, server_hostname=host)


def closed_by_server(sock: ssl.SSLSocket) -> bool:
    """Reads what is there without waiting; True when the server has closed the connection."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    finally:
        sock.setblocking(True)
    return True


def wait_until_closed(sockets: list[ssl.SSLSocket], within: float = BOUND_S) -> list[ssl.SSLSocket]:
    """Wait until the server closes every socket (or `within` seconds pass); returns those still open."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    open_ = set(sockets)
    deadline = time.monotonic() + within
    while open_ and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(deadline - time.monotonic(), 0)):
            ready = key.fileobj
            assert isinstance(ready, ssl.SSLSocket)
            sock = ready
            if closed_by_server(sock):
                selector.unregister(sock)
                open_.discard(sock)
    selector.close()
    return list(open_)


def answered(sock: ssl.SSLSocket, within: float) -> bool:
    """True when the server has sent something (or closed) within `within` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=within)) or sock.pending() > 0


def read_response(sock: ssl.SSLSocket, within: float = BOUND_S) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(within)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def healthy(collector: RunningCollector) -> bool:
    try:
        with collector.session().get(collector.url + "/healthz", timeout=10, headers={"Connection": "close"}) as r:
            return r.status_code == 200
    except requests.RequestException:
        return False


# --- connections and headers -------------------------------------------------------------------------


@pytest.mark.slow
def test_idle_connections_are_closed_and_empty_lines_do_not_keep_them(tmp_path: Path) -> None:
    with collector_process(tmp_path, config={"idle_timeout_s": 1}) as collector:
        never_asked = [tls_connect(collector.url, collector.ca_file) for _ in range(50)]
        answered = tls_connect(collector.url, collector.ca_file)
        answered.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        assert answered.recv(65536).startswith(b"HTTP/1.1 200")
        assert wait_until_closed([*never_asked, answered]) == []
        for sock in [*never_asked, answered]:
            sock.close()

        # A connection that sends empty lines (which begin no request) is closed all the same.
        dribbler = tls_connect(collector.url, collector.ca_file)
        deadline = time.monotonic() + BOUND_S
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                dribbler.sendall(b"\r\n")
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            closed = wait_until_closed([dribbler], within=0.25) == []
        dribbler.close()
        assert closed
        assert healthy(collector)


@pytest.mark.slow
def test_idle_connections_do_not_starve_the_collector_of_file_descriptors(tmp_path: Path) -> None:
    collector = init_collector(tmp_path, config={"idle_timeout_s": 120})

    def low_limit() -> None:  # as a service started with a small soft limit (1024 is common)
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 4096))

    try:
        collector.url = collector.start(preexec_fn=low_limit)
        idle: list[ssl.SSLSocket] = []
        try:
            for _ in range(300):  # more than the limit the collector was started with
                idle.append(tls_connect(collector.url, collector.ca_file, timeout=5))
        except (OSError, ssl.SSLError):
            pass  # the collector could not take another connection
        assert len(idle) == 300
        assert healthy(collector)
        for sock in idle:
            sock.close()
    finally:
        collector.stop()


@pytest.mark.slow
def test_headers_must_end_in_time(tmp_path: Path) -> None:
    with collector_process(tmp_path, config={"header_timeout_s": 1, "idle_timeout_s": 60}) as collector:
        slow = tls_connect(collector.url, collector.ca_file)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\nX-Slow: ")
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:  # a byte at a time, never the end of the headers
            try:
                slow.sendall(b"a")
            except (ConnectionError, ssl.SSLError):
                break
            if answered(slow, within=0.2):
                break
        answer = read_response(slow)
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"header_timeout"' in answer
        assert healthy(collector)


@pytest.mark.slow
def test_headers_beyond_the_limit_are_refused_and_not_kept(tmp_path: Path) -> None:
    with collector_process(tmp_path, config={"max_header_bytes": 16384}) as collector:
        over = tls_connect(collector.url, collector.ca_file)
        over.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\nX-Big: " + b"a" * 100_000)
        answer = read_response(over)
        over.close()
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert b'"headers_too_large"' in answer

        # Unterminated headers of 64 MB: the collector stops reading them and ends the connection, and
        # its memory does not grow with them (before, four such headers added their whole size).
        server = psutil.Process(collector.processes[0].pid)
        before = server.memory_info().rss
        ended: list[bool] = []

        def flood() -> None:
            sock = tls_connect(collector.url, collector.ca_file)
            sock.settimeout(BOUND_S)
            chunk = b"a" * 1_000_000
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: collector\r\nX-Big: ")
                for _ in range(64):
                    sock.sendall(chunk)
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            ended.append(wait_until_closed([sock]) == [])
            sock.close()

        floods = [threading.Thread(target=flood) for _ in range(4)]
        for thread in floods:
            thread.start()
        for thread in floods:
            thread.join(BOUND_S * 2)
        assert ended == [True] * 4
        assert server.memory_info().rss - before < 40_000_000
        assert healthy(collector)


# --- bodies --------------------------------------------------------------------------------------------


def _raw_request(live: LiveCollector, head: bytes, body_part: bytes) -> bytes:
    sock = tls_connect(live.url, live.ca_file)
    try:
        sock.sendall(head + body_part)  # and never the rest of the body
        return read_response(sock)
    finally:
        sock.close()


@pytest.mark.parametrize("live_config", [{"body_timeout_s": 1}])
def test_a_body_that_does_not_arrive_in_time_gets_408(live: LiveCollector) -> None:
    token = live.admin_token
    head = (
        b"POST /api/v1/users HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n"
    )
    answer = _raw_request(live, head, b'{"name": ')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"body_timeout"' in answer

    agent = live.enrolled_agent()
    body = agent.report_body(make_results(3))
    headers = wire.sign_request(agent.key, agent.agent_id, "POST", "/api/v1/reports", body)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (
        f"POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n{lines}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = _raw_request(live, head, body[: len(body) // 2])
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"body_timeout"' in answer
    assert live.count(models.reports) == 0


# --- ingest slots --------------------------------------------------------------------------------------


def _metric(session: requests.Session, url: str, name: str) -> float:
    text = session.get(url + "/metrics", timeout=10).text
    line = next((line for line in text.splitlines() if line.startswith(name + " ")), f"{name} 0")
    return float(line.split()[1])


def _wait_for(condition: Callable[[], bool], within: float = BOUND_S) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_slow_uploads_of_one_agent_hold_no_slot_of_the_others(tmp_path: Path) -> None:
    config = {"max_pending_ingest": 4, "body_timeout_s": 120, "idle_timeout_s": 120}
    with collector_process(tmp_path, config=config) as collector:
        admin = collector.session(collector.admin_token)
        token = admin.post(collector.url + "/api/v1/enroll-tokens", json={"uses": 2}).json()["token"]
        greedy, other = SimAgent(collector.url, collector.ca_file), SimAgent(collector.url, collector.ca_file)
        for agent in (greedy, other):
            assert agent.enroll(token).status_code == 201
        # The greedy agent starts 8 uploads (twice max_pending_ingest) and sends half of each body.
        uploads = []
        for _ in range(8):
            body = greedy.report_body(make_results(5))
            headers = wire.sign_request(greedy.key, greedy.agent_id, "POST", "/api/v1/reports", body)
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            sock = tls_connect(collector.url, collector.ca_file)
            sock.sendall(
                (
                    f"POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
                    f"{lines}Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body[: len(body) // 2]
            )
            uploads.append((sock, body))
        session = collector.session()

        def all_started() -> bool:  # the collector has the headers of all 8 (were slots taken, 4 would hold one)
            receiving = _metric(session, collector.url, "rampart_ingest_receiving")
            return receiving == 8 or _metric(session, collector.url, "rampart_ingest_pending") == 4

        assert _wait_for(all_started)

        answer = other.report(make_results(5))
        assert answer.status_code == 200, answer.text
        assert _metric(session, collector.url, "rampart_ingest_receiving") == 8  # still uploading

        # The slow uploads, once complete (one after the other), are stored too.
        for sock, body in uploads:
            sock.sendall(body[len(body) // 2 :])
            sock.settimeout(BOUND_S)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()


def _hold_database(live: LiveCollector) -> Callable[[], None]:
    """Block writers until the returned function is called (a long transaction in another session)."""
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with live.engine.connect() as connection:
            if live.engine.dialect.name == "sqlite":
                connection.execution_options(rampart_write=True)
            with connection.begin():
                if live.engine.dialect.name == "postgresql":
                    connection.exec_driver_sql("LOCK TABLE reports IN EXCLUSIVE MODE")
                else:
                    connection.execute(models.audit_log.insert().values(at=models.utcnow(), actor="t", action="hold"))
                holding.set()
                release.wait(BOUND_S)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(BOUND_S)

    def release_it() -> None:
        release.set()
        thread.join(BOUND_S)

    return release_it


@pytest.mark.parametrize("live_config", [{"max_pending_ingest_per_agent": 1, "retry_after_s": 3}])
def test_one_agent_cannot_take_every_ingest_slot(live: LiveCollector) -> None:
    busy, other = live.enrolled_agent(), live.enrolled_agent()
    session = live.session()
    outcomes: dict[str, int] = {}
    release = _hold_database(live)
    threads = [
        threading.Thread(target=lambda: outcomes.update(first=busy.report(make_results(3)).status_code)),
        threading.Thread(target=lambda: outcomes.update(other=other.report(make_results(3)).status_code)),
    ]
    try:
        threads[0].start()
        assert _wait_for(lambda: _metric(session, live.url, "rampart_ingest_pending") == 1)
        report_id = str(uuid.uuid4())
        second = busy.report(make_results(3), report_id=report_id)
        assert second.status_code == 503, second.text
        assert second.json()["code"] == "agent_busy" and second.headers["Retry-After"] == "3"
        threads[1].start()  # another agent still gets a slot
        assert _wait_for(lambda: _metric(session, live.url, "rampart_ingest_pending") == 2)
    finally:
        release()
        for thread in threads:
            thread.join(BOUND_S)
    assert outcomes == {"first": 200, "other": 200}
    assert busy.report(make_results(3), report_id=report_id).status_code == 200  # its retry is stored
    assert live.count(models.reports) == 3
