"""One log format for both daemons, run as processes: `--log-format json|text` (and `log_format` in the
config), a UTC timestamp on every line, and the agent's workers writing what its daemon writes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.agent.e2e import FAST_AGENT
from tests.agent.helpers import clean_env, make_state, small_policy, write_config
from tests.conftest import BIN, run_cli
from tests.support.collector import collector_process, init_collector

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+\[\d+\]: "
)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"


def _agent_once(tmp_path: Path, *flags: str, **config: str) -> subprocess.CompletedProcess[str]:
    make_state(tmp_path / "state", collector_url=_closed_port_url(), policies=[small_policy()])
    path = write_config(tmp_path / "agent.yaml", **FAST_AGENT, state_dir=str(tmp_path / "state"), **config)
    return run_cli("rampart-agent", "--config", str(path), "run", "--once", *flags, timeout=120)


def _loggers_of_json(stderr: str) -> set[str]:
    loggers = set()
    for line in stderr.splitlines():
        entry = json.loads(line)  # every line: no plain text left
        assert {"ts", "level", "logger", "msg", "pid"} <= set(entry), entry
        assert entry["ts"].endswith("+00:00")
        loggers.add(entry["logger"])
    return loggers


def test_agent_text_lines_all_have_a_timestamp_the_workers_too(tmp_path: Path) -> None:
    done = _agent_once(tmp_path)
    assert done.returncode == 1  # the collector is down: not delivered
    lines = done.stderr.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), done.stderr
    assert any(" rampart.agent.worker[" in line for line in lines)  # the worker's lines
    assert any(" rampart.agent[" in line and "once:" in line for line in lines)  # the daemon's


def test_agent_json_lines_from_the_flag_or_the_config(tmp_path: Path) -> None:
    flagged = _agent_once(tmp_path / "flag", "--log-format", "json")
    assert flagged.returncode == 1
    assert {"rampart.agent", "rampart.agent.worker", "rampart.agent.transport"} <= _loggers_of_json(flagged.stderr)
    configured = _agent_once(tmp_path / "config", log_format="json")
    assert configured.returncode == 1
    assert {"rampart.agent", "rampart.agent.worker"} <= _loggers_of_json(configured.stderr)
    # The flag wins over the config.
    text = _agent_once(tmp_path / "both", "--log-format", "text", log_format="json")
    assert all(TEXT_LINE.match(line) for line in text.stderr.splitlines()), text.stderr


def test_agent_refuses_an_unknown_log_format_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  state_dir: {tmp_path}\n  log_format: xml\n", encoding="utf-8")
    done = run_cli("rampart-agent", "--config", str(config), "run", "--once")
    assert done.returncode == 2
    assert f"{config}:3: agent.log_format: must be one of json, text" in done.stderr
    assert run_cli("rampart-agent", "run", "--log-format", "xml").returncode == 2


def test_collector_text_from_the_config(tmp_path: Path) -> None:
    with collector_process(tmp_path, config={"log_format": "text"}) as collector:
        pass  # served until ready (its /readyz answered), then stopped
    logged = [line for line in collector.log().splitlines() if TEXT_LINE.match(line)]
    assert any("request" in line and "path=/readyz" in line for line in logged), collector.log()
    assert not [line for line in collector.log().splitlines() if line.startswith("{")]


def test_collector_serve_log_format_flag_wins_over_the_config(tmp_path: Path) -> None:
    collector = init_collector(tmp_path, config={"log_format": "text"})
    port = int(collector.url.rsplit(":", 1)[1])
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "rampart-collector"), "serve", "--config", str(collector.config_path)]
            + ["--log-format", "json", "--plain-http", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=clean_env(),
        )
    session = requests.Session()
    session.trust_env = False
    try:
        while True:  # until it answers (the event), or it has died
            assert process.poll() is None, log_path.read_text()
            try:
                assert session.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        session.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "request" and entry.get("path") == "/healthz" for entry in entries)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"collector:\n  data_dir: {tmp_path}\n  log_format: xml\n", encoding="utf-8")
    refused = run_cli("rampart-collector", "--config", str(bad), "summary")
    assert refused.returncode == 2 and f"{bad}:3: collector.log_format: must be one of json, text" in refused.stderr
