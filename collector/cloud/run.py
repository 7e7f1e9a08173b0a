"""One cloud run: sign in, judge the cloud policies on the tenant and its subscriptions, return results.

Each check runs on the platform its probe observes (`microsoft365` for the tenant, `azure` for
resources) and each distinct probe invocation runs once, however many checks read its facts. Results
name the tenant, or the cloud resource for resource-scoped probes, as their subject.

The run also says what it could not observe (`coverage`): a check whose probe failed (sign-in, a
permission or licence missing, the network, throttling), and for resource checks the subscriptions whose
listing failed. Storing uses it to leave the last known results standing rather than replace them with
errors, and to retire only what a complete listing no longer has (collector/cloud/store.py).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from checks.policy.evaluate import collect, evaluate_policy, resolve_params
from checks.policy.loader import PolicyError, load_policy_file
from checks.policy.model import Policy, ProbeRef, Waiver, canonical_json
from checks.probes import registry
from checks.probes.host import ProbeError
from checks.probes.registry import CLOUD_PLATFORMS, ResourceFacts
from checks.results import Result, Status, Subject, SubjectKind
from collector.cloud.client import MicrosoftCloud, PageHook, Stats, WaitHook
from collector.cloud.config import CloudConfig
from policies import shipped_path

SHIPPED_CLOUD_POLICIES = ("microsoft365.yaml", "azure.yaml")


OK, PARTIAL, FAILED = "ok", "partial", "failed"


@dataclass
class Coverage:
    """What one check of the run could observe."""

    policy_id: str
    check_id: str
    resource_scoped: bool
    unobserved: str | None = None  # why the check's probe could not observe at all
    failed_subscriptions: dict[str, str] = field(default_factory=dict)  # subscription -> why it was not listed

    @property
    def complete(self) -> bool:
        return self.unobserved is None and not self.failed_subscriptions

    def is_failure(self, result: Result) -> bool:
        """Whether this error result says only that something could not be observed."""
        if result.status is not Status.ERROR:
            return False
        if self.unobserved is not None:
            return True
        return subscription_of_listing(result) in self.failed_subscriptions

    def failures(self) -> list[dict[str, str]]:
        if self.unobserved is not None:
            return [{"policy": self.policy_id, "check": self.check_id, "scope": "all", "reason": self.unobserved}]
        return [
            {"policy": self.policy_id, "check": self.check_id, "scope": f"subscription {sub}", "reason": reason}
            for sub, reason in sorted(self.failed_subscriptions.items())
        ]


def subscription_of_listing(result: Result) -> str | None:
    """The subscription of a result about a whole subscription (`/subscriptions/<id>`), else None."""
    subject_id = result.subject.id if result.subject is not None else ""
    parts = subject_id.strip("/").split("/")
    return parts[1] if len(parts) == 2 and parts[0].lower() == "subscriptions" else None


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
    coverage: dict[tuple[str, str], Coverage] = field(default_factory=dict)
    stale_after_s: int = 86400  # cloud.stale_after, recorded with the run

    @property
    def status(self) -> str:
        """ok: everything observed; partial: some checks (or subscriptions) not; failed: nothing was."""
        if self.sign_in_error or (self.coverage and all(c.unobserved for c in self.coverage.values())):
            return FAILED
        return OK if all(c.complete for c in self.coverage.values()) else PARTIAL

    @property
    def reason(self) -> str:
        if self.sign_in_error:
            return self.sign_in_error
        failures = self.failures()
        if not failures:
            return ""
        checks = {(f["policy"], f["check"]) for f in failures}
        if self.status == FAILED:
            return f"no check could be observed: {failures[0]['reason']}"
        return f"{len(checks)} of {len(self.coverage)} checks not fully observed; first: {failures[0]['reason']}"

    def failures(self) -> list[dict[str, str]]:
        return [failure for key in sorted(self.coverage) for failure in self.coverage[key].failures()]


class ObservingRunner:
    """Runs each distinct probe invocation once (as CachingRunner does), remembering which could not
    observe: those that failed, and the subscriptions a resource listing could not read."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._cache: dict[bytes, tuple[Any, str | None]] = {}
        self.unobserved: dict[bytes, str] = {}
        self.failed_subscriptions: dict[bytes, dict[str, str]] = {}

    @staticmethod
    def key(ref: ProbeRef) -> bytes:
        return canonical_json({"name": ref.name, "params": ref.params})

    def __call__(self, ref: ProbeRef) -> Any:
        key = self.key(ref)
        if key not in self._cache:
            try:
                facts = collect(self.target, ref)
            except ProbeError as exc:
                self._cache[key] = (None, exc.reason)
                self.unobserved[key] = exc.reason
            else:
                self._cache[key] = (facts, None)
                if isinstance(facts, list):
                    failed = {
                        resource.resource_id.rsplit("/", 1)[-1]: resource.error or ""
                        for resource in facts
                        if isinstance(resource, ResourceFacts) and resource.listing_failed
                    }
                    if failed:
                        self.failed_subscriptions[key] = failed
        facts, error = self._cache[key]
        if error is not None:
            raise ProbeError(error)
        return facts

    def coverage(self, policy: Policy, check_id: str) -> Coverage:
        check = policy.check(check_id)
        assert check is not None
        inputs = policy.inputs_for(())
        spec = registry.get(check.probe.name)
        coverage = Coverage(policy.id, check_id, resource_scoped=spec is not None and spec.scope == "resource")
        refs = [check.probe] + ([check.applicable_if.probe] if check.applicable_if is not None else [])
        for ref in refs:
            key = self.key(resolve_params(ref, inputs))
            if key in self.unobserved:
                coverage.unobserved = coverage.unobserved or self.unobserved[key]
            coverage.failed_subscriptions.update(self.failed_subscriptions.get(key, {}))
        return coverage


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
    on_wait: WaitHook | None = None,
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
    cloud = MicrosoftCloud(config, on_page=on_page, on_wait=on_wait, backoff_base_s=backoff_base_s)
    results: list[Result] = []
    expired: dict[str, Waiver] = {}
    coverage: dict[tuple[str, str], Coverage] = {}
    for platform in CLOUD_PLATFORMS:
        runner = ObservingRunner(cloud.for_platform(platform))
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
            coverage.update({(policy.id, check_id): runner.coverage(policy, check_id) for check_id in sorted(only)})
    return CloudRun(
        tenant=tenant,
        results=results,
        expired_waivers=sorted(expired.values(), key=lambda w: w.id),
        stats=cloud.stats,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        sign_in_error=cloud.tokens.failure.reason if cloud.tokens.failure else None,
        policies=list(policies),
        coverage=coverage,
        stale_after_s=config.stale_after_s,
    )
