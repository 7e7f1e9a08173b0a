"""One cloud run: sign in, judge the cloud policies on the tenant and its subscriptions, return results.

Each check runs on the platform its probe observes (`microsoft365` for the tenant, `azure` for
resources) and each distinct probe invocation runs once, however many checks read its facts. Results
name the tenant, or the cloud resource for resource-scoped probes, as their subject.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from checks.policy.evaluate import CachingRunner, evaluate_policy
from checks.policy.loader import PolicyError, load_policy_file
from checks.policy.model import Policy, Waiver
from checks.probes import registry
from checks.probes.registry import CLOUD_PLATFORMS
from checks.results import Result, Subject, SubjectKind
from collector.cloud.client import MicrosoftCloud, PageHook, Stats
from collector.cloud.config import CloudConfig
from policies import shipped_path

SHIPPED_CLOUD_POLICIES = ("microsoft365.yaml", "azure.yaml")


@dataclass
class CloudRun:
    tenant: Subject
    results: list[Result]
    expired_waivers: list[Waiver] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    started_at: str = ""
    duration_s: float = 0.0
    sign_in_error: str | None = None  # set when the app could not sign in: nothing could be judged
    policies: list[Policy] = field(default_factory=list)  # what the results were judged against


def load_cloud_policies(config: CloudConfig) -> list[Policy]:
    """The configured policy files (default: the shipped cloud policies); PolicyError if any is invalid."""
    paths = config.policies or [str(shipped_path(name)) for name in SHIPPED_CLOUD_POLICIES]
    policies, issues = [], []
    for path in paths:
        try:
            policies.append(load_policy_file(path))
        except PolicyError as exc:
            issues.extend(exc.issues)
    if issues:
        raise PolicyError(issues)
    return policies


def check_platform(policy: Policy, check_id: str) -> str | None:
    """The cloud platform a check runs on: its own `platforms`, else where its probe has a collector."""
    check = policy.check(check_id)
    assert check is not None
    spec = registry.get(check.probe.name)
    candidates = check.platforms or (spec.platforms if spec else ())
    for platform in candidates:
        if platform in CLOUD_PLATFORMS:
            return platform
    return None


def run_cloud_checks(
    config: CloudConfig,
    *,
    policies: list[Policy] | None = None,
    waivers: list[Waiver] | None = None,
    on_page: PageHook | None = None,
    today: dt.date | None = None,
    backoff_base_s: float = 1.0,
) -> CloudRun:
    """Judge the cloud policies on the configured tenant; sign-in and API failures become error results.

    `waivers` are those the collector holds (storage applies the same ones again when it stores).
    """
    config.validate()
    if policies is None:
        policies = load_cloud_policies(config)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tenant = Subject(SubjectKind.TENANT, config.tenant_id, config.tenant_name or config.tenant_id)
    cloud = MicrosoftCloud(config, on_page=on_page, backoff_base_s=backoff_base_s)
    results: list[Result] = []
    expired: dict[str, Waiver] = {}
    for platform in CLOUD_PLATFORMS:
        runner = CachingRunner(cloud.for_platform(platform))
        for policy in policies:
            only = {check.id for check in policy.checks if check_platform(policy, check.id) == platform}
            if not only:
                continue
            evaluation = evaluate_policy(
                policy,
                subject=tenant,
                platform=platform,
                run_probe=runner,
                waivers=waivers or [],
                today=today,
                only=only,
            )
            results.extend(evaluation.results)
            expired.update({w.id: w for w in evaluation.expired_waivers})
    return CloudRun(
        tenant=tenant,
        results=results,
        expired_waivers=sorted(expired.values(), key=lambda w: w.id),
        stats=cloud.stats,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        sign_in_error=cloud.tokens.failure.reason if cloud.tokens.failure else None,
        policies=list(policies),
    )
