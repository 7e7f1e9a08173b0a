"""Running the checks of the policy bundle on this machine.

Policies pushed by the collector may not run programs of their choosing: the `command` probe is refused
for them unless the local administrator set `agent.allow_command_probe: true` (Wazuh SCA draws the same
line for remote commands). A refused check is an `error` that says why, never a pass or a fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig
from agent.policy_cache import Bundle
from checks.policy.evaluate import CachingRunner, ProbeRunner, evaluate_policy
from checks.policy.model import ProbeRef
from checks.probes.host import Host, LocalHost, ProbeError
from checks.results import Result, Subject, SubjectKind

COMMAND_REFUSED = (
    "the command probe is not allowed in policies from the collector; "
    "a local administrator can allow it with agent.allow_command_probe: true"
)


@dataclass(frozen=True)
class ScheduledCheck:
    policy_id: str
    check_id: str
    interval_s: float

    @property
    def key(self) -> str:
        return f"{self.policy_id}/{self.check_id}"


def schedule(bundle: Bundle, config: AgentConfig) -> list[ScheduledCheck]:
    """Each check with its interval: the local override (by check id or policy/check), else the policy's,
    never below `min_interval`."""
    floor = config.seconds("min_interval")
    planned = []
    for policy in bundle.policies:
        for check in policy.checks:
            override = config.interval_override_s(f"{policy.id}/{check.id}")
            if override is None:
                override = config.interval_override_s(check.id)
            interval = override if override is not None else float(check.interval_s)
            planned.append(ScheduledCheck(policy.id, check.id, max(interval, floor)))
    return planned


class GuardedRunner:
    """Runs probes for remote policies, refusing those the local administrator has not allowed."""

    def __init__(self, inner: ProbeRunner, allow_command_probe: bool) -> None:
        self.inner = inner
        self.allow_command_probe = allow_command_probe

    def __call__(self, ref: ProbeRef) -> Any:
        if ref.name == "command" and not self.allow_command_probe:
            raise ProbeError(COMMAND_REFUSED)
        return self.inner(ref)


def run_checks(
    bundle: Bundle,
    *,
    agent_id: str,
    hostname: str,
    allow_command_probe: bool,
    only: set[str] | None = None,
    host: Host | None = None,
    cache_dir: str | None = None,
) -> list[Result]:
    """Evaluate the bundle's policies (or only the checks whose `policy/check` key is in `only`);
    probes may keep tools' caches in `cache_dir`."""
    host = host or LocalHost(cache_dir=cache_dir)
    runner = GuardedRunner(CachingRunner(host), allow_command_probe)
    subject = Subject(SubjectKind.HOST, agent_id, hostname)
    results: list[Result] = []
    for policy in bundle.policies:
        wanted = None if only is None else {c.id for c in policy.checks if f"{policy.id}/{c.id}" in only}
        if wanted is not None and not wanted:
            continue
        evaluation = evaluate_policy(
            policy,
            subject=subject,
            platform=host.platform,
            run_probe=runner,
            groups=bundle.groups,
            waivers=bundle.waivers,
            only=wanted,
        )
        results.extend(evaluation.results)
    return results
