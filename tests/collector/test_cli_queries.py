"""The query and management commands as processes, on the database a running collector fills."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from collector.commands.identity import os_login
from tests.conftest import run_cli
from tests.support.agents import make_result, make_results
from tests.support.live import LiveCollector

# Many CLI processes per test: part of the slow suite (`make test` still runs it).
pytestmark = pytest.mark.slow


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(live: LiveCollector, tmp_path: Path) -> Cli:
    config = tmp_path / "cli.yaml"
    section = {
        "data_dir": live.config.data_dir,
        "database_url": live.config.database_url,
        "cli_users": {os_login(): ["alice", "bob", "nobody"]},  # this login may act as them
    }
    config.write_text(yaml.safe_dump({"collector": section}), encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("rampart-collector", "--config", str(config), *args)

    return run


def fill(live: LiveCollector) -> list[str]:
    ids = []
    for index, group in enumerate(("servers", "servers", "default")):
        agent = live.enrolled_agent(group=group, hostname=f"host-{index}")
        assert agent.report(make_results(4, fail_every=2)).status_code == 200
        ids.append(agent.agent_id)
    return ids


def test_summary_hosts_host_check_and_trends(live: LiveCollector, cli: Cli) -> None:
    run = cli
    ids = fill(live)
    summary = run("summary")
    assert summary.returncode == 0, summary.stderr
    assert "Compliance: 50.0%" in summary.stdout and "6 pass, 6 fail" in summary.stdout
    assert "Hosts: 3, 0 stale" in summary.stdout
    assert "servers" in summary.stdout and "c00" in summary.stdout
    data = json.loads(run("summary", "--format", "json", "--by", "control").stdout)
    assert data["totals"]["fail"] == 6
    assert "secure_configuration" in run("summary", "--by", "control").stdout  # the stored policy's mapping
    assert json.loads(run("summary", "--format", "json", "--group", "default").stdout)["totals"]["fail"] == 2

    hosts = run("hosts")
    assert hosts.returncode == 0 and all(agent_id in hosts.stdout for agent_id in ids)
    assert len(json.loads(run("hosts", "--format", "json", "--group", "servers").stdout)["hosts"]) == 2

    host = run("host", "host-0")
    assert host.returncode == 0, host.stderr
    assert "host-0" in host.stdout and '"value": "c00"' in host.stdout
    assert json.loads(run("host", ids[1], "--format", "json").stdout)["host"]["agent_id"] == ids[1]
    missing = run("host", "nowhere")
    assert missing.returncode == 1 and "no host" in missing.stderr

    check = run("check", "c00")
    assert check.returncode == 0 and "host-1" in check.stdout and "0 pass, 3 fail" in check.stdout
    assert json.loads(run("check", "c01", "--status", "pass", "--format", "json").stdout)["score"]["pass"] == 3

    trends = json.loads(run("trends", "--period", "week", "--format", "json").stdout)
    assert trends["points"][-1]["fail"] == 6
    today = run("summary", "--as-of", dt.date.today().isoformat())
    assert today.returncode == 0 and "Hosts: 3, staleness is known only for now" in today.stdout
    assert run("summary", "--as-of", "yesterday").returncode == 2
    assert run("summary", "--as-of", "1999-01-01").returncode == 2  # before the kept history


# The management commands' storage is covered on both databases by the API tests; as processes, SQLite.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_users_tokens_waivers_policies_jobs_and_audit(live: LiveCollector, cli: Cli, tmp_path: Path) -> None:
    run = cli
    agent = live.enrolled_agent(group="servers")
    assert agent.report([make_result("c00", "fail")]).status_code == 200
    assert run("users", "add", "alice", "--role", "analyst").returncode == 0
    assert run("users", "add", "bob", "--role", "analyst").returncode == 0
    assert run("users", "add", "alice", "--role", "analyst").returncode == 1
    assert run("users", "add", "carol", "--role", "boss").returncode == 2
    token = json.loads(run("api-token", "create", "--user", "alice", "--format", "json").stdout)
    listed = run("api-token", "list", "--user", "alice")
    assert token["id"] in listed.stdout and token["token"] not in listed.stdout
    assert live.session(token["token"]).get(live.url + "/api/v1/summary").status_code == 200
    assert run("api-token", "revoke", token["id"]).returncode == 0
    assert live.session(token["token"]).get(live.url + "/api/v1/summary").status_code == 401

    requested = run(
        "waivers", "request", "--check", "c00", "--group", "servers", "--justification", "legacy app",
        "--expires", "2099-01-01", "--as", "alice", "--format", "json",
    )  # fmt: skip
    assert requested.returncode == 0, requested.stderr
    waiver_id = json.loads(requested.stdout)["id"]
    own = run("waivers", "approve", waiver_id, "--as", "alice")
    assert own.returncode == 1 and "someone other than its requester" in own.stderr
    assert run("waivers", "approve", waiver_id, "--as", "nobody").returncode == 2  # no such user
    # The same login acting as another user is still the requester: another person approves.
    same_login = run("waivers", "approve", waiver_id, "--as", "bob")
    assert same_login.returncode == 1 and "someone other than its requester" in same_login.stderr
    bob = json.loads(run("api-token", "create", "--user", "bob", "--format", "json").stdout)["token"]
    approved = live.session(bob).post(f"{live.url}/api/v1/waivers/{waiver_id}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert json.loads(run("summary", "--format", "json").stdout)["totals"]["waived"] == 1
    assert "approved" in run("waivers", "list").stdout

    policy = tmp_path / "extra.yaml"
    policy.write_text(
        "id: extra\nversion: '2'\ntitle: Extra\nchecks:\n  - id: x1\n    title: t\n    description: d\n"
        "    rationale: r\n    remediation: m\n    severity: low\n    probe: {name: os}\n"
        "    expect: {fact: hostname, exists: true}\n",
        encoding="utf-8",
    )
    added = run("policy", "add", str(policy), "--group", "servers")
    assert added.returncode == 0, added.stderr
    assert "extra" in run("policy", "list").stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nchecks: 3\n", encoding="utf-8")
    refused = run("policy", "add", str(broken))
    assert refused.returncode == 2 and "broken.yaml:" in refused.stderr

    ran = run("jobs", "run", "--force", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    assert [r["job"] for r in json.loads(ran.stdout)] == ["retention"]
    assert "retention" in run("jobs", "list").stdout

    audit = json.loads(run("audit", "--format", "json").stdout)
    actions = [entry["action"] for entry in audit]
    for action in (
        "user.add",
        "api_token.create",
        "api_token.revoke",
        "waiver.request",
        "waiver.approve",
        "policy.add",
    ):
        assert action in actions
    assert all(entry["actor"].startswith(("cli:", "user:", "system", "agent:", "test")) for entry in audit)


def test_hosts_as_at_a_date(live: LiveCollector, cli: Cli) -> None:
    run = cli
    agent = live.enrolled_agent(hostname="host-then")
    today = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = (today - dt.timedelta(hours=1)).isoformat() + "+00:00"
    assert agent.report([make_result("c00", "fail", evaluated_at=stamp)]).status_code == 200
    now = json.loads(run("hosts", "--as-of", today.date().isoformat(), "--format", "json").stdout)
    assert [(h["hostname"], h["fail"], h["stale"]) for h in now["hosts"]] == [("host-then", 1, None)]
    before = run("hosts", "--as-of", (today.date() - dt.timedelta(days=1)).isoformat(), "--format", "json")
    assert json.loads(before.stdout)["hosts"] == []  # not enrolled yet
    refused = run("hosts", "--as-of", today.date().isoformat(), "--stale")
    assert refused.returncode == 2 and "known now only" in refused.stderr
