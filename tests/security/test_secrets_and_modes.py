"""Secrets stay secret, and keys and state are owner-only whatever the umask.

- A real collector (init, serve, enrolment tokens, API tokens, agents enrolled and reporting, a cloud
  client secret in its config, an export): none of the secrets appears in its log, in any API answer
  except the one that creates it, in any CLI output except the one that creates it, or in an export.
- `rampart-collector init` and `rampart-agent enroll` under umask 000, 022 and 077: private keys, the
  database, the agent's state directory and spool are owner-only.
- A policy pushed by the collector cannot read the agent's own key or /etc/shadow through a content probe.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.helpers import clean_env, make_state, write_config
from tests.conftest import BIN
from tests.fakes.microsoft import CLIENT_SECRET
from tests.reliability.figures import Figures
from tests.reliability.fleet import enrol_fleet, run_worker
from tests.support.collector import collector_process, free_port

pytestmark = [pytest.mark.security, pytest.mark.slow]


def secret_words(secret: str) -> list[str]:
    """The secret, and its part after the prefix (a log might drop the prefix)."""
    return [secret, secret.split("_", 1)[-1]]


def test_secrets_are_absent_from_logs_answers_and_exports(tmp_path: Path, figures: Figures) -> None:
    """Tokens, keys and the cloud client secret appear nowhere but in the answer that creates them."""
    config = {"log_level": "debug"}
    with collector_process(tmp_path / "collector", config=config) as collector:
        document = yaml.safe_load(collector.config_path.read_text())
        document["cloud"] = {"tenant_id": "t", "client_id": "c", "client_secret": CLIENT_SECRET}
        collector.config_path.write_text(yaml.safe_dump(document))
        secrets: dict[str, str] = {"admin token": collector.admin_token, "cloud client secret": CLIENT_SECRET}
        created = collector.cli("enroll-token", "create", "--uses", "2", "--format", "json")
        secrets["enrolment token"] = json.loads(created.stdout)["token"]
        admin = collector.session(collector.admin_token)
        admin.post(collector.url + "/api/v1/users", json={"name": "carol", "role": "auditor"})
        api = admin.post(collector.url + "/api/v1/api-tokens", json={"user": "carol"}).json()
        secrets["api token"] = api["token"]
        agents = enrol_fleet(collector, tmp_path / "fleet", 2)
        for agent in agents:
            assert run_worker(agent.config, "run")["exit_code"] == 0
        key_text = (agents[0].state / "agent.key").read_text()
        secrets["agent private key"] = key_text.strip().splitlines()[1]
        signing = (collector.data_dir / "signing-key.pem").read_text()
        secrets["collector signing key"] = signing.strip().splitlines()[1]
        tls_key = (collector.data_dir / "tls" / "server-key.pem").read_text()
        secrets["tls key"] = tls_key.strip().splitlines()[1]
        # everything a reader can see afterwards
        auditor = collector.session(api["token"])
        seen = {
            "log": collector.log(),
            "export csv": auditor.get(collector.url + "/api/v1/export/results", params={"format": "csv"}).text,
            "export jsonl": auditor.get(collector.url + "/api/v1/export/results", params={"format": "jsonl"}).text,
            "audit": auditor.get(collector.url + "/api/v1/audit").text,
            "tokens listed": admin.get(collector.url + "/api/v1/api-tokens").text,
            "enrolment tokens listed": admin.get(collector.url + "/api/v1/enroll-tokens").text,
            "agents": admin.get(collector.url + "/api/v1/agents").text,
            "metrics": admin.get(collector.url + "/metrics").text,
            "summary": auditor.get(collector.url + "/api/v1/summary").text,
        }
        for args in (["enroll-token", "list"], ["api-token", "list"], ["agents", "list"], ["audit"], ["users", "list"]):
            done = collector.cli(*args, "--format", "json")
            seen[" ".join(args)] = done.stdout + done.stderr
        cloud = collector.cli("cloud", "run", "--no-store")  # fails to sign in (no such tenant): says so
        seen["cloud run"] = cloud.stdout + cloud.stderr
        for agent in agents:
            status = subprocess.run(
                [str(BIN / "rampart-agent"), "--config", str(agent.config), "status", "--format", "json"],
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_env(),
            )
            seen[f"agent status {agent.agent_id[:8]}"] = status.stdout + status.stderr
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in seen.items()
        for word in secret_words(secret)
        if len(word) >= 16 and word in text
    ]
    figures.set(
        inputs_tried=len(secrets) * len(seen), secrets=len(secrets), places_searched=len(seen), leaks=len(leaks)
    )
    assert leaks == []


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask-000", "umask-022"])
def test_keys_and_state_are_owner_only_under_any_umask(umask: int, tmp_path: Path, figures: Figures) -> None:
    """Keys, the database and the agent's state are owner-only whatever umask created them."""
    previous = os.umask(umask)
    try:
        with collector_process(tmp_path / "collector") as collector:
            (agent,) = enrol_fleet(collector, tmp_path / "fleet", 1)
            # the agent as a process too, under the same umask
            assert run_worker(agent.config, "run")["exit_code"] == 0
            data = collector.data_dir
            private = {
                "collector signing key": data / "signing-key.pem",
                "collector TLS key": data / "tls" / "server-key.pem",
                "collector database": data / "collector.db",
                "agent key": agent.state / "agent.key",
                "agent identity": agent.state / "agent.json",
                "agent spool": agent.state / "spool.sqlite",
                "agent policy cache": agent.state / "policy-bundle.json",
            }
            directories = {"agent state": agent.state, "collector data": data}
    finally:
        os.umask(previous)
    wide = {}
    for name, path in private.items():
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                wide[name] = oct(mode)
    for name, path in directories.items():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            wide[name] = oct(mode)
    figures.set(inputs_tried=len(private) + len(directories), umask=oct(umask), too_wide=wide)
    assert wide == {}


def test_a_pushed_policy_cannot_read_the_agents_key_or_shadow(tmp_path: Path, figures: Figures) -> None:
    """A policy signed by the collector asks for the agent's key and /etc/shadow: no secret leaves the machine."""
    root = tmp_path / "state"

    def reading(check_id: str, path: str) -> dict[str, object]:
        return {
            "id": check_id, "title": "t", "description": "d", "rationale": "r", "remediation": "r",
            "severity": "low", "platforms": ["linux"],
            "probe": {"name": "file_content", "params": {"path": path, "skip_comments": False}},
            "expect": {"fact": "match_count", "eq": 0},
        }  # fmt: skip

    policy = {
        "id": "nosy", "version": "1.0.0", "title": "t", "description": "d",
        "checks": [reading("read-key", str(root / "agent.key")), reading("read-shadow", "/etc/shadow")],
    }  # fmt: skip
    make_state(root, collector_url=f"https://127.0.0.1:{free_port()}", policies=[policy])
    config = write_config(tmp_path / "agent.yaml", state_dir=str(root), request_attempts=1)
    summary = run_worker(config, "run")
    assert summary.get("results") == 2, summary
    with Spool(StatePaths(root).spool, 1 << 30) as spool:
        sent = "".join(report.body for report in spool.pending(10))
    key_line = (root / "agent.key").read_text().strip().splitlines()[1]
    figures.set(inputs_tried=2)
    assert key_line not in sent and "PRIVATE KEY" not in sent
    assert "root:" not in sent
