"""A policy from the collector observes within what the agent's local config allows; the same policy run by
the local administrator (`rampart-agent check --policy`) keeps full power to read.

Each test runs the worker as a process on a signed bundle, the way the daemon does, with the collector
away, and reads the results it committed to the spool.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from agent.config import DEFAULT_PUSHED_READ_EXCLUDE, DEFAULT_PUSHED_READ_PATHS
from agent.pushed import ReadPolicy
from tests.agent.helpers import make_state, run_worker, small_policy
from tests.agent.test_worker import agent_config, closed_port_url, spooled_results
from tests.conftest import run_cli


def check(check_id: str, probe: str, expect: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "id": check_id,
        "title": check_id,
        "description": "d",
        "rationale": "r",
        "remediation": "r",
        "severity": "high",
        "platforms": ["linux"],
        "probe": {"name": probe, "params": params},
        "expect": expect,
    }


def exists(check_id: str, probe: str, **params: Any) -> dict[str, Any]:
    return check(check_id, probe, {"fact": "exists", "eq": True}, **params)


def pushed_results(tmp_path: Path, checks: list[dict[str, Any]], **config: Any) -> dict[str, dict[str, Any]]:
    state = tmp_path / "state"
    make_state(state, collector_url=closed_port_url(), policies=[small_policy(checks=checks)])
    run = run_worker(agent_config(tmp_path, state, **config), "run")
    assert run.summary["results"] == len(checks), run.stderr
    return {str(r["check_id"]): r for r in spooled_results(state)}


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """An allowed directory (the local config lists it) holding a plain file and links out of it."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "app.conf").write_text("Listen 443\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not configuration\n", encoding="utf-8")
    (allowed / "innocent.conf").symlink_to(tmp_path / "state" / "agent.key")
    (allowed / "elsewhere.conf").symlink_to(tmp_path / "notes.txt")
    return allowed


def test_pushed_policies_read_only_what_the_local_config_allows(tmp_path: Path, layout: Path) -> None:
    key = str(tmp_path / "state" / "agent.key")
    results = pushed_results(
        tmp_path,
        [
            exists("agent-key", "file_content", path=key),
            exists("agent-key-settings", "key_value_file", path=key),
            exists("agent-key-hash", "file", path=key, hash=True),
            exists("agent-key-metadata", "file", path=key),
            exists("shadow", "file_content", path="/etc/shadow"),
            exists("gshadow", "key_value_file", path="/etc/gshadow"),
            exists("not-listed", "file_content", path=str(tmp_path / "notes.txt")),
            exists("link-to-the-key", "file_content", path=str(layout / "innocent.conf")),
            exists("link-out", "file_content", path=str(layout / "elsewhere.conf")),
            exists("dot-dot-out", "file_content", path=str(layout / ".." / "notes.txt")),
            exists("allowed", "file_content", path=str(layout / "app.conf")),
            exists("passwd", "file_content", path="/etc/passwd"),
        ],
        pushed_read_paths=[str(layout) + "/**", "/etc/passwd", "/etc/shadow", "/etc/gshadow"],
    )
    state_dir = f"in the agent's state directory ({tmp_path / 'state'})"
    for check_id in ("agent-key", "agent-key-settings", "agent-key-hash"):
        assert results[check_id]["status"] == "error" and state_dir in results[check_id]["reason"]
        assert results[check_id]["observed"] == {}
    # metadata is not content: the key's owner and mode stay observable (its mode is worth checking)
    assert results["agent-key-metadata"]["status"] == "pass"
    assert results["agent-key-metadata"]["observed"]["mode"] == "0600"
    for check_id in ("shadow", "gshadow"):  # listed by the local config, but excluded by default
        assert results[check_id]["status"] == "error"
        assert "agent.pushed_read_exclude" in results[check_id]["reason"]
    assert "agent.pushed_read_paths" in results["not-listed"]["reason"]
    link = results["link-to-the-key"]
    assert link["status"] == "error" and state_dir in link["reason"] and f"resolves to {key}" in link["reason"]
    for check_id in ("link-out", "dot-dot-out"):
        assert results[check_id]["status"] == "error"
        assert f"resolves to {tmp_path / 'notes.txt'}" in results[check_id]["reason"]
        assert "agent.pushed_read_paths" in results[check_id]["reason"]
    assert results["allowed"]["status"] == "pass" and results["allowed"]["observed"]["lines"] == ["Listen 443"]
    assert results["passwd"]["status"] == "pass"
    stored = json.dumps(list(results.values()))
    assert "PRIVATE KEY" not in stored and "not configuration" not in stored


def test_the_defaults_allow_configuration_and_refuse_secrets(tmp_path: Path) -> None:
    results = pushed_results(
        tmp_path,
        [
            exists("login-defs", "key_value_file", path="/etc/login.defs"),
            exists("shadow", "file_content", path="/etc/shadow"),
            exists("etc-rampart", "file_content", path="/etc/rampart/config.yaml"),
            exists("root-home", "file_content", path="/root/.bash_history"),
        ],
    )
    assert results["login-defs"]["status"] in ("pass", "fail")  # read and judged (the file may be absent)
    assert "agent.pushed_read_exclude" in results["shadow"]["reason"]
    assert "agent.pushed_read_exclude" in results["etc-rampart"]["reason"]
    assert "agent.pushed_read_paths" in results["root-home"]["reason"]
    assert all(results[c]["status"] == "error" for c in ("shadow", "etc-rampart", "root-home"))


@pytest.fixture
def marked_process() -> Iterator[tuple[str, str]]:
    """A process (its name, a token) whose command line carries something a pushed policy must not see."""
    token = "--api-token=rampart-test-3141592653"
    code = "import sys, time; time.sleep(300)"
    proc = subprocess.Popen([sys.executable, "-c", code, token])
    try:
        yield psutil.Process(proc.pid).name(), token
    finally:
        proc.kill()
        proc.wait()


def test_pushed_policies_see_no_command_lines_unless_allowed(tmp_path: Path, marked_process: tuple[str, str]) -> None:
    name, token = marked_process
    checks = [
        check("by-name", "process", {"fact": "running", "eq": True}, name=name),
        check("by-cmdline", "process", {"fact": "running", "eq": True}, cmdline_pattern="api-token"),
    ]
    results = pushed_results(tmp_path, checks)
    by_name = results["by-name"]
    assert by_name["status"] == "pass" and by_name["observed"]["count"] >= 1
    assert all(p["cmdline"] is None for p in by_name["observed"]["processes"])
    assert token not in json.dumps(by_name)
    assert results["by-cmdline"]["status"] == "error"
    assert "agent.pushed_process_cmdlines: true" in results["by-cmdline"]["reason"]

    allowed = pushed_results(tmp_path / "allowed", checks, pushed_process_cmdlines=True)
    assert allowed["by-cmdline"]["status"] == "pass"
    assert any(token in p["cmdline"] for p in allowed["by-cmdline"]["observed"]["processes"])


def test_the_local_administrator_keeps_full_power_to_read(tmp_path: Path, layout: Path) -> None:
    state = tmp_path / "state"
    make_state(state)
    policy = small_policy(
        checks=[
            exists("agent-key", "file_content", path=str(state / "agent.key")),
            exists("not-listed", "file_content", path=str(tmp_path / "notes.txt")),
        ]
    )
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    result = run_cli("rampart-agent", "check", "--policy", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    results = {r["check_id"]: r for r in json.loads(result.stdout)["results"]}
    assert results["not-listed"]["status"] == "pass"
    assert results["not-listed"]["observed"]["lines"] == ["not configuration"]
    key = results["agent-key"]
    assert key["status"] == "pass"  # read, but what it holds never leaves the probe layer
    assert key["observed"]["lines"] == ["[redacted private key]"] and "PRIVATE KEY" not in result.stdout


def test_a_bad_read_allow_list_is_reported_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump({"agent": {"state_dir": str(tmp_path / "s"), "pushed_read_paths": ["/etc/**", "etc/x"]}})
    )
    result = run_cli("rampart-agent", "--config", str(config), "status")
    assert result.returncode == 2
    assert (
        f"{config}:" in result.stderr and "agent.pushed_read_paths.1: 'etc/x' is not an absolute path" in result.stderr
    )


def test_the_allow_list_reads_paths_as_each_platform_writes_them() -> None:
    # Windows: either slash, any case; macOS: /etc and /var are links to /private/etc and /private/var.
    windows = ReadPolicy(
        allowed=tuple(DEFAULT_PUSHED_READ_PATHS),
        excluded=tuple(DEFAULT_PUSHED_READ_EXCLUDE),
        state_dir="C:\\ProgramData\\Rampart\\agent",
        platform="windows",
    )
    hosts = "c:\\windows\\SYSTEM32\\drivers\\etc\\hosts"
    assert windows.refusal(hosts, hosts) is None
    key = "c:\\programdata\\rampart\\AGENT\\agent.key"
    assert "state directory" in str(windows.refusal(key, key))
    host_key = "C:\\ProgramData\\ssh\\ssh_host_ed25519_key"
    assert "agent.pushed_read_exclude" in str(windows.refusal(host_key, host_key))
    mac = ReadPolicy(
        allowed=tuple(DEFAULT_PUSHED_READ_PATHS),
        excluded=tuple(DEFAULT_PUSHED_READ_EXCLUDE),
        state_dir="/Library/Application Support/Rampart/agent",
        platform="darwin",
    )
    assert mac.refusal("/etc/ssh/sshd_config", "/private/etc/ssh/sshd_config") is None
    assert "agent.pushed_read_exclude" in str(mac.refusal("/etc/shadow", "/private/etc/shadow"))
    sibling = "/Library/Application Support/Rampart/agent-old/agent.key"
    assert "state directory" not in str(mac.refusal(sibling, sibling))  # a prefix is not the directory


def test_the_default_allow_list_holds_configuration_and_excludes_secrets() -> None:
    linux = ReadPolicy(
        tuple(DEFAULT_PUSHED_READ_PATHS), tuple(DEFAULT_PUSHED_READ_EXCLUDE), "/var/lib/rampart-agent", "linux"
    )
    for allowed in ("/etc/ssh/sshd_config", "/etc/pam.d/common-password", "/etc/sudoers.d/90-admins",
                    "/etc/security/pwquality.conf", "/etc/sysctl.d/99-hardening.conf", "/etc/login.defs"):  # fmt: skip
        assert linux.refusal(allowed, allowed) is None, allowed
    for refused in ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/security/opasswd",
                    "/etc/ssh/ssh_host_ed25519_key", "/etc/ssl/private/server.pem", "/etc/apt/auth.conf.d/x.conf",
                    "/etc/systemd/credentials/db.cred", "/etc/default/secrets.env", "/etc/rampart/config.yaml",
                    "/var/lib/rampart-agent/agent.key", "/root/.ssh/id_ed25519", "/proc/1/environ"):  # fmt: skip
        assert linux.refusal(refused, refused) is not None, refused
