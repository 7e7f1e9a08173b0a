"""Helpers for end-to-end tests: a real collector process (tests/support/collector.py), agents enrolled with
it through `rampart-agent enroll`, and what the collector stored, read from its database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.policy.loader import load_policy_file
from policies import shipped_path
from tests.agent.helpers import clean_env, write_config
from tests.conftest import BIN
from tests.support.collector import RunningCollector

FAST_AGENT = {
    "request_attempts": 2,
    "backoff_initial": "0.2s",
    "backoff_max": "1s",
    "drain_rate": 50,
    "splay": "0",
    "jitter": "0",
    "min_interval": "1s",
    "connect_timeout": "3s",
    "read_timeout": "20s",
}

# The collector assigns the shipped baseline to the default group: a full run gives one result per check.
BASELINE_CHECKS = len(load_policy_file(shipped_path("baseline.yaml")).checks)


@dataclass
class EnrolledAgent:
    config: Path
    state: Path
    agent_id: str

    def cli(
        self, *args: str, timeout: float = 180, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "rampart-agent"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or clean_env(),
        )

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--format", "json")
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def reconfigure(self, **agent: Any) -> None:
        write_config(self.config, **{**FAST_AGENT, "state_dir": str(self.state), **agent})


def new_token(collector: RunningCollector, *args: str) -> str:
    created = collector.cli("enroll-token", "create", "--format", "json", *args)
    assert created.returncode == 0, created.stderr
    token: str = json.loads(created.stdout)["token"]
    return token


def enrol(collector: RunningCollector, directory: Path, *, group: str | None = None, **agent: Any) -> EnrolledAgent:
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    config = write_config(directory / "agent.yaml", **{**FAST_AGENT, "state_dir": str(state), **agent})
    token = new_token(collector, *(["--group", group] if group else []))
    enrolled = subprocess.run(
        [str(BIN / "rampart-agent"), "--config", str(config), "enroll", "--collector", collector.url,
         "--token", token, "--ca-cert", collector.ca_file, "--format", "json"],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    return EnrolledAgent(config, state, json.loads(enrolled.stdout)["agent_id"])


@dataclass(frozen=True)
class StoredReport:
    report_id: str
    agent_id: str
    result_count: int
    dropped: int


def stored_reports(collector: RunningCollector, agent_id: str | None = None) -> list[StoredReport]:
    """The reports the collector stored (of one agent), read from its SQLite database (read-only)."""
    database = collector.data_dir / "collector.db"
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT report_id, agent_id, result_count, dropped FROM reports ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [StoredReport(*row) for row in rows if agent_id is None or row[1] == agent_id]
