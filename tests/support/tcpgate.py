"""A TCP relay to a server that a test can shut, as a database restart does, without touching the server.

The shared PostgreSQL serves other suites at the same time and is never restarted. A collector pointed at
it through a gate sees what a restart looks like from its side: `shut()` ends every relayed connection
and hangs up on each new one at once (psycopg: "server closed the connection unexpectedly"); `open()`
relays again.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class TcpGate:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = True
        self._live: set[socket.socket] = set()
        self.refused = 0  # connections hung up on while shut
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def shut(self) -> None:
        with self._lock:
            self._open = False
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)

    def open(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        self.shut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpGate:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                if not self._open:
                    self.refused += 1
                    _close(client)
                    continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if not self._open:  # shut while this one was connecting
                    self.refused += 1
                    _close(client)
                    _close(server)
                    continue
                self._live |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live -= {source, target}
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
