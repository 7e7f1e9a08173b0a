"""Helpers for agent tests: state as enrolment leaves it, signed bundles, configs, workers run as processes.

The state written here is byte-for-byte what `rampart-agent enroll` writes (agent.key, agent.json, a signed
policy-bundle.json); tests that need a collector to enrol use the real one (tests/agent/test_e2e_*.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.state import Identity, ensure_private_dir, write_atomic, write_json
from checks import wire
from policies import shipped_path

ROOT = Path(__file__).resolve().parents[2]


def baseline_document() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(shipped_path("baseline.yaml").read_text(encoding="utf-8"))
    return data


def small_policy(*, checks: list[dict[str, Any]] | None = None, interval: str = "6h") -> dict[str, Any]:
    """A valid policy with cheap checks that read files every Linux machine has."""
    return {
        "id": "small",
        "version": "1.0.0",
        "title": "Small test policy",
        "description": "Cheap checks for agent tests.",
        "defaults": {"interval": interval},
        "checks": checks
        or [
            {
                "id": "passwd-exists",
                "title": "/etc/passwd exists",
                "description": "Reads /etc/passwd.",
                "rationale": "Every Unix has one.",
                "remediation": "None.",
                "severity": "low",
                "platforms": ["linux"],
                "probe": {"name": "file", "params": {"path": "/etc/passwd"}},
                "expect": {"fact": "exists", "eq": True},
            },
            {
                "id": "no-such-file",
                "title": "A file that is not there",
                "description": "Reads a missing path.",
                "rationale": "Gives a fail.",
                "remediation": "None.",
                "severity": "medium",
                "platforms": ["linux"],
                "probe": {"name": "file", "params": {"path": "/nonexistent/rampart-test"}},
                "expect": {"fact": "exists", "eq": True},
            },
        ],
    }


def command_check(check_id: str = "echo-hello") -> dict[str, Any]:
    return {
        "id": check_id,
        "title": "A command runs",
        "description": "Runs echo.",
        "rationale": "Tests the command gate.",
        "remediation": "None.",
        "severity": "low",
        "platforms": ["linux"],
        "probe": {"name": "command", "params": {"argv": ["echo", "hello"]}},
        "expect": {"fact": "exit_code", "eq": 0},
    }


def sign_bundle(
    collector_key: Ed25519PrivateKey,
    agent_id: str,
    policies: list[dict[str, Any]],
    *,
    etag: str = "etag-1",
    group: str = "servers",
    issued_at: str = "2026-01-01T00:00:00Z",
    waivers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    payload = {
        "agent_id": agent_id,
        "group": group,
        "issued_at": issued_at,
        "etag": etag,
        "policies": policies,
        "waivers": waivers or [],
    }
    return wire.sign_document(collector_key, payload)


@dataclass
class AgentState:
    root: Path
    agent_key: Ed25519PrivateKey
    collector_key: Ed25519PrivateKey
    agent_id: str

    def write_bundle(self, policies: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        document = sign_bundle(self.collector_key, self.agent_id, policies, **kwargs)
        write_json(self.root / "policy-bundle.json", document)
        return document


def make_state(
    root: Path,
    *,
    collector_url: str = "https://127.0.0.1:9",
    policies: list[dict[str, Any]] | None = None,
    group: str = "servers",
) -> AgentState:
    """A state directory as a successful enrolment leaves it, with a bundle signed by a collector key."""
    ensure_private_dir(root)
    agent_key, collector_key = wire.generate_key(), wire.generate_key()
    agent_id = wire.agent_id_for(agent_key)
    write_atomic(root / "agent.key", wire.private_key_pem(agent_key), mode=0o600)
    identity = Identity(agent_id, collector_url, wire.public_key_text(collector_key), group, "2026-01-01T00:00:00Z", "")
    write_json(root / "agent.json", identity.to_dict())
    state = AgentState(root, agent_key, collector_key, agent_id)
    if policies is not None:
        state.write_bundle(policies, group=group)
    return state


def write_config(path: Path, **agent: Any) -> Path:
    path.write_text(yaml.safe_dump({"agent": agent}, sort_keys=True), encoding="utf-8")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env.update(extra)
    return env


@dataclass
class WorkerRun:
    returncode: int
    summary: dict[str, Any]
    stderr: str


def run_worker(
    config: Path, task: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> WorkerRun:
    """`python -m agent.worker TASK` as a process, the way the daemon runs it."""
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "agent.worker", task, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
        cwd=ROOT,
    )
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    return WorkerRun(proc.returncode, summary, proc.stderr)
