"""Running the checks of the policy bundle on this machine.

Every probe of the bundle goes through `agent.pushed.PushedPolicyRunner`: policies from the collector
observe within what the local config allows (no `command` probe unless `agent.allow_command_probe`, file
reads within `agent.pushed_read_paths`, no other processes' command lines). A refused check is an `error`
that says why, never a pass or a fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import AgentConfig
from agent.policy_cache import Bundle
from agent.pushed import PushedPolicyRunner, ReadPolicy
from checks.policy.evaluate import CachingRunner, evaluate_policy
from checks.probes.host import Host
from checks.probes.local import LocalHost
from checks.results import Result, Subject, SubjectKind


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


def pushed_runner(host: Host, config: AgentConfig) -> PushedPolicyRunner:
    reads = ReadPolicy(
        allowed=tuple(config.pushed_read_paths),
        excluded=tuple(config.pushed_read_exclude),
        state_dir=host.resolve(config.state_dir),
        platform=host.platform,
    )
    return PushedPolicyRunner(
        CachingRunner(host),
        host,
        allow_command_probe=config.allow_command_probe,
        reads=reads,
        process_cmdlines=config.pushed_process_cmdlines,
    )


def run_checks(
    bundle: Bundle,
    *,
    agent_id: str,
    hostname: str,
    config: AgentConfig,
    only: set[str] | None = None,
    host: Host | None = None,
    cache_dir: str | None = None,
) -> list[Result]:
    """Evaluate the bundle's policies (or only the checks whose `policy/check` key is in `only`);
    probes may keep tools' caches in `cache_dir`."""
    host = host or LocalHost(cache_dir=cache_dir)
    runner = pushed_runner(host, config)
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
