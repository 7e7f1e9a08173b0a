"""A private PostgreSQL server for the scenarios that restart the database or end its connections.

The shared server at RAMPART_TEST_PG_URL serves other suites at the same time: it is never restarted and
its connections are never terminated. This one is the test's own: `initdb` into a temporary directory,
served on a free loopback port (and a Unix socket in its own directory), with trust authentication for
the local user `postgres`. initdb refuses to run as root, so as root it runs as the `postgres` system user
with a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.collector import free_port


class PostgresUnavailable(Exception):
    pass


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        found = shutil.which("initdb")
        if not found:
            raise PostgresUnavailable("no initdb (install the postgresql package)")
        return Path(found).parent
    return Path(candidates[0]).parent


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="rampart-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_user: str | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("running as root and there is no postgres user for initdb") from exc
            self.as_user = "postgres"
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            # The temporary directory's parent is world-traversable (/tmp); the directory itself is 0700.
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(argv[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def _options(self) -> str:
        # fsync off: a crash of this throwaway server is not what the scenarios test; restarts are clean.
        return f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"

    def start(self) -> PrivatePostgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w",
                  "start")  # fmt: skip
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def terminate_connections(self, database: str) -> int:
        """End every backend connected to `database` (as an administrator's pg_terminate_backend would)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return sum(1 for (ended,) in rows if ended)

    def restart(self, mode: str = "fast") -> None:
        """Stop (ending every connection) and start again on the same port; waits until it accepts."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-o",
                  self._options(), "restart")  # fmt: skip
        self.restarts += 1
        self.wait_ready()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            except PostgresUnavailable:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
