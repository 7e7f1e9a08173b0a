"""The command line names who acted: `cli:<login>` of the operating system on every change, `--as USER`
only where the config maps that login to USER, and the two-person rule between people, not names."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.commands.identity import os_login
from tests.conftest import run_cli
from tests.support.agents import make_result
from tests.support.live import LiveCollector

Cli = Callable[..., subprocess.CompletedProcess[str]]
LOGIN = os_login()  # this test's login, found as the commands find it
ROOT_WITHOUT_AUDIT_LOGIN = (
    hasattr(os, "getuid")
    and os.getuid() == 0
    and Path("/proc/self/loginuid").exists()
    and Path("/proc/self/loginuid").read_text().strip() == "4294967295"
)


def cli_for(live: LiveCollector, tmp_path: Path, cli_users: dict[str, Any] | None = None) -> Cli:
    config = tmp_path / f"cli-{len(list(tmp_path.glob('cli-*.yaml')))}.yaml"
    section: dict[str, Any] = {"data_dir": live.config.data_dir, "database_url": live.config.database_url}
    if cli_users is not None:
        section["cli_users"] = cli_users
    config.write_text(yaml.safe_dump({"collector": section}), encoding="utf-8")

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli("rampart-collector", "--config", str(config), *args, env=env)

    return run


def audit(run: Cli, action: str) -> list[dict[str, Any]]:
    result = run("audit", "--action", action, "--format", "json")
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def prepare(live: LiveCollector, run: Cli) -> None:
    agent = live.enrolled_agent(group="servers")
    assert agent.report([make_result("c00", "fail")]).status_code == 200
    for name in ("alice", "bob"):
        assert run("users", "add", name, "--role", "analyst").returncode == 0


def request_as(run: Cli, user: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(
        "waivers", "request", "--check", "c00", "--group", "servers", "--justification", "legacy app",
        "--expires", "2099-01-01", "--as", user, "--format", "json", env=env,
    )  # fmt: skip


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_login_cannot_request_as_one_user_and_approve_as_another(live: LiveCollector, tmp_path: Path) -> None:
    plain = cli_for(live, tmp_path)
    prepare(live, plain)
    refused = request_as(plain, "alice")
    assert refused.returncode == 2
    assert f"--as alice: the login {LOGIN} may act only as {LOGIN}" in refused.stderr
    assert "collector.cli_users" in refused.stderr

    mapped = cli_for(live, tmp_path, {LOGIN: ["alice", "bob"]})
    requested = request_as(mapped, "alice")
    assert requested.returncode == 0, requested.stderr
    waiver_id = json.loads(requested.stdout)["id"]
    as_bob = mapped("waivers", "approve", waiver_id, "--as", "bob")
    assert as_bob.returncode == 1 and "someone other than its requester" in as_bob.stderr

    (entry,) = audit(mapped, "waiver.request")
    assert (entry["actor"], entry["details"]["as"]) == (f"cli:{LOGIN}", "alice")  # who typed it, and as whom
    # Someone else approves over the API: that is two people.
    bob = live.session(json.loads(mapped("api-token", "create", "--user", "bob", "--format", "json").stdout)["token"])
    approved = bob.post(f"{live.url}/api/v1/waivers/{waiver_id}/approve")
    assert approved.status_code == 200, approved.text
    (approval,) = audit(mapped, "waiver.approve")
    assert (approval["actor"], approval["details"]["as"]) == ("user:bob", "bob")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_cli_change_names_the_login_not_what_the_environment_claims(live: LiveCollector, tmp_path: Path) -> None:
    run = cli_for(live, tmp_path)
    claims = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory"}
    assert run("users", "add", "erin", "--role", "auditor", env=claims).returncode == 0
    token = json.loads(run("api-token", "create", "--user", "erin", "--format", "json", env=claims).stdout)
    assert run("api-token", "revoke", token["id"], env=claims).returncode == 0
    created = run("enroll-token", "create", "--format", "json", env=claims)
    assert created.returncode == 0, created.stderr
    assert run("users", "disable", "erin", env=claims).returncode == 0
    assert run("users", "enable", "erin", env=claims).returncode == 0
    entries = json.loads(run("audit", "--format", "json").stdout)
    done_here = {
        "user.add", "api_token.create", "api_token.revoke", "enroll_token.create", "user.disable", "user.enable",
    }  # fmt: skip
    # the fixture's own set-up (init's first admin, a test policy stored by "test") is not one of these changes
    ours = [e for e in entries if e["action"] in done_here and not e["actor"].startswith("system")]
    by_action = {e["action"]: e["actor"] for e in ours}
    assert set(by_action) == done_here
    assert set(by_action.values()) == {f"cli:{LOGIN}"}


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_WITHOUT_AUDIT_LOGIN, reason="needs root without an audit login id (as under sudo)")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_under_sudo_the_invoking_login_is_recorded_and_two_logins_make_two_people(
    live: LiveCollector, tmp_path: Path
) -> None:
    run = cli_for(live, tmp_path, {"carol": ["alice"], "dave": ["bob"]})
    prepare(live, run)
    carol, dave = {"SUDO_USER": "carol"}, {"SUDO_USER": "dave"}
    refused = request_as(run, "bob", env=carol)
    assert refused.returncode == 2 and "the login carol may act only as carol, alice" in refused.stderr
    requested = request_as(run, "alice", env=carol)
    assert requested.returncode == 0, requested.stderr
    waiver_id = json.loads(requested.stdout)["id"]
    approved = run("waivers", "approve", waiver_id, "--as", "bob", env=dave)
    assert approved.returncode == 0, approved.stderr
    assert [(e["actor"], e["details"]["as"]) for e in audit(run, "waiver.approve")] == [("cli:dave", "bob")]
    assert [(e["actor"], e["details"]["as"]) for e in audit(run, "waiver.request")] == [("cli:carol", "alice")]
    # The login alone is a person too: carol may not approve what carol requested, whoever she acts as.
    second = json.loads(request_as(run, "alice", env=carol).stdout)["id"]
    run_as_carol = cli_for(live, tmp_path, {"carol": ["alice", "bob"]})
    own = run_as_carol("waivers", "approve", second, "--as", "bob", env=carol)
    assert own.returncode == 1 and "someone other than its requester" in own.stderr


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_last_enabled_admin_stays_and_users_can_be_enabled(live: LiveCollector, tmp_path: Path) -> None:
    run = cli_for(live, tmp_path)
    last = run("users", "disable", "admin")
    assert last.returncode == 1 and "admin is the last enabled admin" in last.stderr
    assert run("users", "add", "root2", "--role", "admin").returncode == 0
    assert run("users", "disable", "admin").returncode == 0
    assert live.admin().get(live.url + "/api/v1/summary").status_code == 401
    enabled = run("users", "enable", "admin")
    assert enabled.returncode == 0 and "enabled user admin" in enabled.stdout
    assert live.admin().get(live.url + "/api/v1/summary").status_code == 200
    assert run("users", "enable", "nobody").returncode == 1
