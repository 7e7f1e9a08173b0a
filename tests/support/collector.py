"""Real collectors for tests: `rampart-collector init` + `serve` as a process on a free loopback port.

    with collector_process(tmp_path) as collector:
        requests.get(collector.url + "/healthz", verify=collector.ca_file)
        collector.cli("enroll-token", "create")

The collector gets its own data directory, its own TLS CA (pass `collector.ca_file` as `verify=`; never
rely on REQUESTS_CA_BUNDLE) and a first admin token. `database_url` picks the database (default: SQLite in
the data directory). `stop()` sends SIGTERM and waits; the context manager always stops it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without RAMPART_* variables (a test's collector is configured by its file only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update(extra or {})
    return env


@dataclass
class RunningCollector:
    url: str
    ca_file: str
    admin_token: str
    data_dir: Path
    config_path: Path
    log_path: Path
    collector_public_key: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `rampart-collector --config <this collector's config> ARGS` as a process."""
        return subprocess.run(
            [str(BIN / "rampart-collector"), "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )

    def session(self, token: str | None = None) -> requests.Session:
        """A requests session that trusts only this collector's CA and sends `token` as a Bearer token."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def start(
        self, *, port: int | None = None, timeout: float = 30, preexec_fn: Callable[[], None] | None = None
    ) -> str:
        """Start one more `serve` process of this collector (same config and database); returns its URL.
        `preexec_fn` runs in the child before `serve` starts (e.g. to lower its resource limits)."""
        port = port or free_port()
        url = f"https://127.0.0.1:{port}"
        log = self.log_path.open("ab")
        process = subprocess.Popen(
            [str(BIN / "rampart-collector"), "--config", str(self.config_path), "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        log.close()
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"rampart-collector serve exited with {process.returncode}:\n{self.log()[-4000:]}"
                    )
                try:
                    # Connection: close, so no idle connection of ours holds up the server's shutdown.
                    probe = session.get(
                        url + "/readyz", verify=self.ca_file, timeout=2, headers={"Connection": "close"}
                    )
                    with probe as response:
                        ready = response.status_code == 200
                except requests.RequestException:
                    ready = False
                if ready:
                    return url
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"rampart-collector serve did not become ready in {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 15) -> None:
        # Responses caught in reference cycles keep their sockets open, and an open connection holds up the
        # server's graceful shutdown: collect them first.
        gc.collect()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        self.processes.clear()


def init_collector(
    directory: Path,
    *,
    database_url: str | None = None,
    config: dict[str, Any] | None = None,
    port: int | None = None,
) -> RunningCollector:
    """Write a config and run `rampart-collector init`; nothing is served yet (see `start`)."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = directory / "collector-data"
    port = port or free_port()
    section: dict[str, Any] = {
        "data_dir": str(data_dir),
        "listen_host": "127.0.0.1",
        "listen_port": port,
        "job_poll_s": 1,
        **(config or {}),
    }
    if database_url:
        section["database_url"] = database_url
    config_path = directory / "collector.yaml"
    config_path.write_text(yaml.safe_dump({"collector": section}), encoding="utf-8")
    init = subprocess.run(
        [str(BIN / "rampart-collector"), "--config", str(config_path), "init", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    if init.returncode != 0:
        raise RuntimeError(f"rampart-collector init failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    outcome = json.loads(init.stdout)
    return RunningCollector(
        url=f"https://127.0.0.1:{port}",
        ca_file=str(Path(outcome["ca_file"]).absolute()),
        admin_token=outcome["admin_token"],
        data_dir=data_dir,
        config_path=config_path,
        log_path=directory / "collector.log",
        collector_public_key=outcome["collector_public_key"],
    )


@contextmanager
def collector_process(
    directory: Path,
    *,
    database_url: str | None = None,
    config: dict[str, Any] | None = None,
) -> Iterator[RunningCollector]:
    """A collector initialised in `directory` and served as a real process; stopped on exit."""
    collector = init_collector(directory, database_url=database_url, config=config)
    try:
        collector.url = collector.start(port=int(collector.url.rsplit(":", 1)[1]))
        yield collector
    finally:
        collector.stop()
