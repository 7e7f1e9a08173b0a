"""`rampart-agent status` as a process says when this agent's results are stuck: reports in the spool and
the last delivery failed is exit 1, with the reason on standard error; delivered again, exit 0."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.agent.e2e import FAST_AGENT
from tests.agent.helpers import clean_env, write_config
from tests.conftest import BIN
from tests.support.live import live_collector


def _agent(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "rampart-agent"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_exits_1_while_reports_are_stuck_after_a_failed_delivery(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = {**FAST_AGENT, "state_dir": str(state)}
    config = write_config(tmp_path / "agent.yaml", **settings)
    with live_collector(tmp_path, f"sqlite:///{tmp_path / 'collector.db'}") as live:
        enrolled = _agent(
            config, "enroll", "--collector", live.url, "--token", live.enrollment_token(), "--ca-cert", live.ca_file
        )
        assert enrolled.returncode == 0, enrolled.stderr
        assert _agent(config, "status").returncode == 0  # enrolled, nothing waiting

        # The collector out of reach: the run judges the cached policy, spools, and cannot deliver.
        write_config(config, **settings, collector_url=f"https://127.0.0.1:{_closed_port()}")
        assert _agent(config, "run", "--once").returncode == 1
        stuck = _agent(config, "status")
        assert stuck.returncode == 1, stuck.stdout
        assert "report(s) wait in the spool and the last delivery failed" in stuck.stderr
        shown = _agent(config, "status", "--format", "json")
        assert shown.returncode == 1
        data = json.loads(shown.stdout)
        assert data["spool"]["reports"] >= 1 and data["last_delivery"]["error"]
        assert any("wait in the spool" in problem for problem in data["problems"])

        # Reachable again: delivered, nothing waits, exit 0.
        write_config(config, **settings)
        assert _agent(config, "run", "--once").returncode == 0
        healthy = _agent(config, "status", "--format", "json")
        assert healthy.returncode == 0, healthy.stdout
        assert json.loads(healthy.stdout)["problems"] == []


def test_status_documents_its_exit_codes() -> None:
    helped = subprocess.run(
        [str(BIN / "rampart-agent"), "status", "--help"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "Exit codes: 0 enrolled, accepted and delivering; 1 a problem" in text
    assert "reports waiting in the spool after the last delivery failed" in text
