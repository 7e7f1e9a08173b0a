"""HAProxy in front of collector replicas, as a deployment would run it (docs/deploy.md).

TCP mode, TLS passed through to the collectors (agents pin the collector's CA, and every replica serves
the same certificate), round robin, each replica health-checked over HTTPS on /readyz every 300 ms
(down after 2 failures, up after 2 successes). The admin socket reports which servers are up.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.collector import free_port

HAPROXY = "/usr/sbin/haproxy"

CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch

frontend collectors_in
    bind 127.0.0.1:{port}
    default_backend collectors

backend collectors
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1 hdr Connection close
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2 check check-ssl verify required ca-file {ca}
{servers}
"""


class HAProxy:
    def __init__(self, backends: list[int], ca_file: str, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="rampart-haproxy-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.socket = self.directory / "admin.sock"
        self.config = self.directory / "haproxy.cfg"
        servers = "\n".join(f"    server c{i} 127.0.0.1:{port}" for i, port in enumerate(backends, start=1))
        self.config.write_text(CONFIG.format(socket=self.socket, port=self.port, ca=ca_file, servers=servers))
        self.log = self.directory / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its config:\n{check.stdout}{check.stderr}")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not self.socket.exists() or self.servers_up() == set():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        return self

    def command(self, text: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def servers_up(self) -> set[str]:
        """Names of the backend servers HAProxy currently sends traffic to."""
        try:
            stats = self.command("show stat")
        except OSError:
            return set()
        lines = stats.lstrip("# ").splitlines()
        if not lines:
            return set()
        header = lines[0].split(",")
        up = set()
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if (
                row.get("pxname") == "collectors"
                and row.get("svname", "").startswith("c")
                and row.get("status") == "UP"
            ):
                up.add(row["svname"])
        return up

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
