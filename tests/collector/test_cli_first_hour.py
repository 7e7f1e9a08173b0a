"""The first hour of an administrator (issue 15), on the collector's command line run as a process: what
to do about a failure, what to do next on an empty collector, and errors in words instead of tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.policy.loader import load_policy_document
from collector.storage.engine import run_write
from tests.conftest import BIN, run_cli
from tests.support.agents import make_result
from tests.support.live import LiveCollector
from tests.support.policies import check_entry, store_policy

Cli = Callable[..., subprocess.CompletedProcess[str]]

# Written by people, shown to people: the first line is what a table shows, the escape must stay visible.
REMEDIATION = "Turn the firewall on\x1b[2J (ufw enable).\nThen check the default inbound policy is deny."


@pytest.fixture
def cli(live: LiveCollector, tmp_path: Path) -> Cli:
    config = tmp_path / "cli.yaml"
    section = {"data_dir": live.config.data_dir, "database_url": live.config.database_url}
    config.write_text(yaml.safe_dump({"collector": section}), encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("rampart-collector", "--config", str(config), *args)

    return run


def _store_fixable_policy(live: LiveCollector) -> str:
    entries = [check_entry("fw"), check_entry("ok"), check_entry("unknown")]
    entries[0]["remediation"] = REMEDIATION
    entries[1]["remediation"] = "Nothing to do."
    entries[2]["remediation"] = "Install the probe's tool."
    policy = load_policy_document(
        {"id": "fixable", "version": "1", "title": "Fixable", "checks": entries}, source="test"
    )
    run_write(live.engine, lambda connection: store_policy(connection, policy, "fixers"))
    return policy.sha256


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_host_and_check_show_the_remediation_of_failures_and_errors(live: LiveCollector, cli: Cli) -> None:
    digest = _store_fixable_policy(live)
    agent = live.enrolled_agent(group="fixers", hostname="pc-1")
    judged: dict[str, Any] = {"policy_id": "fixable", "policy_hash": digest, "policy_version": "1"}
    results = [make_result("fw", "fail", **judged), make_result("ok", "pass", **judged)]
    results.append(make_result("unknown", "error", **judged))
    assert agent.report(results).status_code == 200

    table = cli("host", "pc-1")
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout
    fixes = table.stdout.split("To fix")[1].splitlines()
    assert any(line.startswith("fw") and "Turn the firewall on\\x1b[2J (ufw enable). …" in line for line in fixes)
    assert any(line.startswith("unknown") and "Install the probe's tool." in line for line in fixes)
    assert "Nothing to do." not in table.stdout  # a pass needs no fixing

    shown = json.loads(cli("host", "pc-1", "--format", "json").stdout)
    by_check = {r["check"]: r for r in shown["results"]}
    assert by_check["fw"]["remediation"] == REMEDIATION  # the whole text
    assert by_check["unknown"]["remediation"] == "Install the probe's tool."
    assert by_check["ok"]["remediation"] is None

    check = cli("check", "fw")
    assert check.returncode == 0, check.stderr
    assert "remediation:\n  Turn the firewall on\\x1b[2J (ufw enable).\n  Then check the default" in check.stdout
    assert json.loads(cli("check", "fw", "--format", "json").stdout)["remediation"] == REMEDIATION

    # The API answers with the same whole text.
    admin = live.admin()
    assert admin.get(live.url + "/api/v1/checks/fw").json()["remediation"] == REMEDIATION
    api_results = {r["check"]: r for r in admin.get(live.url + "/api/v1/hosts/pc-1").json()["results"]}
    assert api_results["fw"]["remediation"] == REMEDIATION


def test_summary_of_an_empty_collector_says_what_to_do_next(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n  listen_port: 9443\n", encoding="utf-8")
    assert run_cli("rampart-collector", "--config", str(config), "init").returncode == 0
    summary = run_cli("rampart-collector", "--config", str(config), "summary")
    assert summary.returncode == 0, summary.stderr
    assert "Compliance: n/a" in summary.stdout
    assert "No agents yet. Next steps:" in summary.stdout
    assert "rampart-collector enroll-token create" in summary.stdout
    ca = tmp_path / "data" / "tls" / "ca.pem"
    assert f"rampart-agent enroll --collector https://127.0.0.1:9443 --token-file FILE --ca-cert {ca}" in summary.stdout
    # The machine form stays what it was: the figures only.
    assert "next" not in run_cli("rampart-collector", "--config", str(config), "summary", "--format", "json").stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_summary_with_agents_but_no_results_says_how_to_get_them(live: LiveCollector, cli: Cli) -> None:
    live.enrolled_agent(hostname="quiet")
    summary = cli("summary")
    assert summary.returncode == 0, summary.stderr
    assert "No results yet from the 1 enrolled agent(s)" in summary.stdout
    assert "rampart-agent run --once" in summary.stdout and "rampart-agent status" in summary.stdout
    assert "No agents yet" not in summary.stdout


def test_no_database_says_which_one_was_tried_and_to_run_init(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'never'}\n", encoding="utf-8")
    for args in (("hosts",), ("summary",), ("db", "upgrade")):
        result = run_cli("rampart-collector", "--config", str(config), *args)
        assert result.returncode == 1, (args, result.stderr)
        assert f"the database {tmp_path / 'never' / 'collector.db'} (SQLite)" in result.stderr, result.stderr
        assert f"(config {config})" in result.stderr
        assert "run `rampart-collector init`" in result.stderr
        assert "Traceback" not in result.stderr
    # No config at all: the default data directory, under the working directory, and where a config is looked for.
    bare = run_cli("rampart-collector", "hosts", cwd=tmp_path)
    assert bare.returncode == 1
    assert f"the database {tmp_path / 'rampart-data' / 'collector.db'} (SQLite)" in bare.stderr, bare.stderr
    assert "no config file" in bare.stderr and "run `rampart-collector init`" in bare.stderr


def test_a_database_server_that_refuses_is_named_without_its_password(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("collector:\n  database_url: postgresql://rampart:s3cret@127.0.0.1:1/rampart\n", encoding="utf-8")
    result = run_cli("rampart-collector", "--config", str(config), "hosts")
    assert result.returncode == 1
    assert "the database postgresql+psycopg://rampart:***@127.0.0.1:1/rampart" in result.stderr, result.stderr
    assert "s3cret" not in result.stderr and "Is the database server running" in result.stderr


def test_a_port_in_use_is_one_plain_line_naming_the_address(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert run_cli("rampart-collector", "--config", str(config), "init").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("rampart-collector", "--config", str(config), "serve", "--port", str(port), timeout=60)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == [
        f"rampart-collector: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another collector or program listens there; choose another with --port or listen_port)"
    ]


def test_db_upgrade_to_an_unknown_revision_names_it_and_the_known_ones(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = run_cli("rampart-collector", "--config", str(config), "db", "upgrade", "--revision", "bogus")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no schema revision 'bogus': the revisions are 0001, 0002" in result.stderr
    assert "(or head)" in result.stderr


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """`rampart-collector summary | head -3`: the reader gone before the output is written (here at once,
    so that the write always finds the pipe closed) ends the command quietly."""
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert run_cli("rampart-collector", "--config", str(config), "init").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    for args in (("summary",), ("summary", "--format", "json"), ("policy", "list")):
        process = subprocess.Popen(
            [str(BIN / "rampart-collector"), "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        with process.stderr:
            stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, stderr
        assert stderr == "", stderr


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = run_cli("rampart-collector", "--config", str(config), "serve", "--port", "99999")
    assert result.returncode == 2
    assert "argument --port: 99999 is not between 1 and 65535" in result.stderr
    assert "serving" not in result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("listen_port: 99999", "collector.listen_port must be from 1 to 65535, got 99999"),
        ("stale_after_hours: -5", "collector.stale_after_hours must be at least 1, got -5"),
        ("workers: 0", "collector.workers must be from 1 to 256, got 0"),
        ("retention_days: 0", "collector.retention_days must be at least 1, got 0"),
        ("briefing:\n    rag:\n      green_at_percent: 150", "collector.briefing.rag.green_at_percent must be from 0"),
    ],
)
def test_config_values_out_of_range_are_refused_with_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n  {line}\n", encoding="utf-8")
    for command in (("serve",), ("summary",)):
        result = run_cli("rampart-collector", "--config", str(config), *command, timeout=60)
        assert result.returncode == 2, result.stderr
        assert f"rampart-collector: error: {config}:{2 + line.count(chr(10)) + 1}: {message}" in result.stderr
        assert "serving" not in result.stderr


def test_an_environment_value_out_of_range_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("rampart-collector", "summary", cwd=tmp_path, env={"RAMPART_COLLECTOR__LISTEN_PORT": "0"})
    assert result.returncode == 2
    assert (
        "environment variable RAMPART_COLLECTOR__LISTEN_PORT: collector.listen_port must be from 1 to 65535, got 0"
        in (result.stderr)
    )
