"""`rampart-collector` as a process: init, serve over HTTPS, enrolment tokens and agents from the CLI."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import requests

from checks import __version__
from tests.conftest import run_cli
from tests.support.agents import SimAgent, make_results
from tests.support.collector import BIN, clean_env, collector_process, free_port


def test_help_and_version() -> None:
    for args in (("--help",), ("init", "--help"), ("serve", "--help"), ("enroll-token", "create", "--help")):
        result = run_cli("rampart-collector", *args)
        assert result.returncode == 0, result.stderr
        assert "usage: rampart-collector" in result.stdout
    assert run_cli("rampart-collector", "--version").stdout.strip() == f"rampart-collector {__version__}"
    assert run_cli("rampart-collector").returncode == 2


def test_init_creates_everything_once_and_keeps_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    first = run_cli("rampart-collector", "--config", str(config), "init")
    assert first.returncode == 0, first.stderr
    token_line = next(line.strip() for line in first.stdout.splitlines() if line.strip().startswith("rpa_"))
    data = tmp_path / "data"
    for name in ("signing-key.pem", "tls/server-key.pem", "tls/ca-key.pem", "collector.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert (data / "tls" / "ca.pem").is_file()
    key = (data / "signing-key.pem").read_bytes()
    second = run_cli("rampart-collector", "--config", str(config), "init", "--format", "json")
    assert second.returncode == 0, second.stderr
    outcome = json.loads(second.stdout)
    assert outcome["admin_token"] is None  # the first admin token is only ever shown once
    assert outcome["created"] == []
    assert (data / "signing-key.pem").read_bytes() == key
    assert token_line not in second.stdout


def test_bad_config_is_a_usage_error_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("collector:\n  workers: many\n", encoding="utf-8")
    result = run_cli("rampart-collector", "--config", str(config), "init")
    assert result.returncode == 2
    assert f"{config}:2: collector.workers must be a whole number" in result.stderr


def test_tls_files_named_in_the_config_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"collector:\n  data_dir: {tmp_path / 'd'}\n  tls_cert_file: {tmp_path / 'none.pem'}\n", encoding="utf-8"
    )
    result = run_cli("rampart-collector", "--config", str(config), "init")
    assert result.returncode == 1
    assert "none.pem named in the config does not exist" in result.stderr


def test_serve_refuses_to_start_without_init(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'never'}\n", encoding="utf-8")
    result = run_cli("rampart-collector", "--config", str(config), "serve", timeout=60)
    assert result.returncode == 1
    assert "rampart-collector init" in result.stderr


def test_a_served_collector_enrols_stores_and_revokes(tmp_path: Path, database_url: str) -> None:
    with collector_process(tmp_path, database_url=database_url) as collector:
        session = collector.session()
        assert session.get(collector.url + "/healthz").json() == {"status": "ok"}
        assert session.get(collector.url + "/readyz").json()["status"] == "ready"
        created = collector.cli("enroll-token", "create", "--group", "servers", "--uses", "2", "--format", "json")
        assert created.returncode == 0, created.stderr
        token = json.loads(created.stdout)
        agent = SimAgent(collector.url, collector.ca_file)
        enrolled = agent.enroll(token["token"])
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["collector_public_key"] == collector.collector_public_key
        assert agent.report(make_results(40)).status_code == 200

        listing = json.loads(collector.cli("enroll-token", "list", "--format", "json").stdout)
        assert [(t["id"], t["uses"], t["state"]) for t in listing] == [(token["id"], 1, "active")]
        agents = json.loads(collector.cli("agents", "list", "--format", "json").stdout)
        assert [(a["agent_id"], a["group"], a["revoked_at"]) for a in agents] == [(agent.agent_id, "servers", None)]

        revoked = collector.cli("agents", "revoke", agent.agent_id)
        assert revoked.returncode == 0, revoked.stderr
        refused = agent.report(make_results(1))
        assert refused.status_code == 403 and refused.json()["code"] == "agent_revoked"
        assert collector.cli("agents", "revoke", agent.agent_id).returncode == 1  # already revoked

        assert collector.cli("enroll-token", "revoke", token["id"]).returncode == 0
        late = SimAgent(collector.url, collector.ca_file).enroll(token["token"])
        assert late.status_code == 401 and late.json()["code"] == "bad_token"
        table = collector.cli("enroll-token", "list").stdout
        assert "revoked" in table and token["id"] in table
        agent.session.close()
        session.close()
    log_lines = [json.loads(line) for line in collector.log().splitlines() if line.startswith("{")]
    requests_logged = [line for line in log_lines if line.get("msg") == "request"]
    assert any(line["path"] == "/api/v1/reports" and line["status"] == 200 for line in requests_logged)
    assert token["token"] not in collector.log()  # secrets are never logged


def test_plain_http_only_when_asked(tmp_path: Path) -> None:
    with collector_process(tmp_path) as collector:
        pass  # initialised and served once over HTTPS
    port = free_port()
    with (tmp_path / "plain.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "rampart-collector"), "--config", str(collector.config_path), "serve", "--plain-http"]
            + ["--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    session = requests.Session()
    session.trust_env = False
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = session.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, (tmp_path / "plain.log").read_text()
                assert time.monotonic() < deadline, "serve --plain-http did not answer"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        session.close()
        process.terminate()
        process.wait(timeout=15)
    assert "serving http://127.0.0.1" in (tmp_path / "plain.log").read_text()
