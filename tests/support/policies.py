"""The policy the simulated agents' results are judged against (tests/support/agents.py).

The collector counts only results judged against a policy it stores and assigned to the agent's group,
and takes each check's title, severity and framework mapping from that policy. Tests that send results
store this one (`store_fleet_policy`) and assign it to the default group, which every group without an
assignment of its own falls back to; `tests.support.live` does so for every in-process collector.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from checks.policy.loader import load_policy_document
from checks.policy.model import Policy
from collector.storage import policies
from collector.storage.engine import run_write

FLEET_POLICY_ID = "fleet-test"
CHECK_IDS = [f"c{i:02d}" for i in range(60)]
DEFAULT_FRAMEWORKS: dict[str, list[str]] = {"cyber_essentials": ["secure_configuration"], "cis_controls_v8": ["4.1"]}
# Checks the compliance tests name, with what the policy says they are.
NAMED_CHECKS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "patch": ("high", {"cyber_essentials": ["security_update_management"]}),
    "firewall": ("medium", {"cyber_essentials": ["firewalls"], "ncsc_caf": ["B4.c"]}),
    "disk": ("critical", {"cis_controls_v8": ["3.6"]}),
}


def check_entry(
    check_id: str, severity: str = "medium", frameworks: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {
        "id": check_id,
        "title": f"Check {check_id}",
        "description": "Observed by the simulated agent.",
        "rationale": "Tests need checks.",
        "remediation": "None needed.",
        "severity": severity,
        "probe": {"name": "os"},
        "expect": {"fact": "platform", "exists": True},
        "frameworks": frameworks if frameworks is not None else DEFAULT_FRAMEWORKS,
    }


def fleet_document(version: str = "1.0.0", checks: list[str] | None = None) -> dict[str, Any]:
    entries = [check_entry(check_id) for check_id in (checks if checks is not None else CHECK_IDS)]
    if checks is None:
        entries += [check_entry(name, severity, frameworks) for name, (severity, frameworks) in NAMED_CHECKS.items()]
    return {"id": FLEET_POLICY_ID, "version": version, "title": "What the simulated agents check", "checks": entries}


FLEET_POLICY: Policy = load_policy_document(fleet_document(), source="tests/support/policies.py")


def store_policy(
    connection: sa.Connection, policy: Policy, group: str = "default", now: dt.datetime | None = None
) -> None:
    moment = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    policies.add(connection, policy, by="test", now=moment)
    policies.assign(connection, group, policy.id, by="test", now=moment)


def store_fleet_policy(engine: sa.Engine, group: str = "default") -> None:
    """Store FLEET_POLICY and assign it to `group` (idempotent)."""
    run_write(engine, lambda connection: store_policy(connection, FLEET_POLICY, group))
