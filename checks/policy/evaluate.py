"""Running a policy: probes observe, expectations judge, waivers apply.

Each distinct (probe, parameters) pair runs once per evaluation, however many checks read its facts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from checks.policy.contract import fact_problems
from checks.policy.expr import Expr, Outcome, Truth, substitute_inputs
from checks.policy.model import Check, Policy, ProbeRef, Waiver, canonical_json
from checks.probes import registry
from checks.probes.host import ProbeError
from checks.probes.redact import RedactingHost, redact_text, redact_value
from checks.probes.registry import ResourceFacts
from checks.regex_budget import RegexTooSlow, time_limit
from checks.results import Result, Status, Subject, SubjectKind

# Runs a probe: (probe ref with inputs resolved) -> facts, or a list of ResourceFacts; raises ProbeError.
ProbeRunner = Callable[[ProbeRef], Any]


@dataclass
class Evaluation:
    results: list[Result]
    expired_waivers: list[Waiver] = field(default_factory=list)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def resolve_params(ref: ProbeRef, inputs: dict[str, Any]) -> ProbeRef:
    params = {
        key: inputs[value["input"]] if isinstance(value, dict) and set(value) == {"input"} else value
        for key, value in ref.params.items()
    }
    return ProbeRef(ref.name, params)


class CachingRunner:
    """Runs each distinct probe invocation once; remembers errors as well as facts."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._cache: dict[bytes, tuple[Any, str | None]] = {}

    def __call__(self, ref: ProbeRef) -> Any:
        key = canonical_json({"name": ref.name, "params": ref.params})
        if key not in self._cache:
            try:
                self._cache[key] = (collect(self.target, ref), None)
            except ProbeError as exc:
                self._cache[key] = (None, exc.reason)
        facts, error = self._cache[key]
        if error is not None:
            raise ProbeError(error)
        return facts


REDACTED_FACT = "_redacted"


def collect(target: Any, ref: ProbeRef) -> Any:
    """Run a probe's collector for the target's platform: the one way into and out of the probe layer.

    Parameters are checked against the probe's grammar (and the platform's) before the collector runs,
    whoever checked them before; a host probe sees the machine through `RedactingHost`, and its facts are
    scanned again on the way out. When anything was redacted, the facts say what in `_redacted`.
    """
    spec = registry.get(ref.name)
    if spec is None:
        raise ProbeError(f"unknown probe {ref.name}")
    collector = spec.collectors.get(target.platform)
    if collector is None:
        raise ProbeError(f"probe {ref.name} has no collector for {target.platform}")
    params = spec.params_with_defaults(ref.params)
    problems = registry.param_problems(spec, params, target.platform)
    if problems:
        details = "; ".join(f"params.{name}: {message}" for name, message in problems)
        raise ProbeError(f"refused: probe {ref.name}: {details}; nothing was run")
    source = RedactingHost(target) if spec.scope == "host" else target
    try:
        raw = collector(source, params)
    except ProbeError as exc:
        exc.reason = redact_text(exc.reason)[0]
        raise
    except Exception as exc:  # a collector bug must become an error result, not end the run
        reason = redact_text(f"probe {ref.name} failed unexpectedly: {type(exc).__name__}: {exc}")[0]
        raise ProbeError(reason) from exc
    kinds: set[str] = set(source.kinds) if isinstance(source, RedactingHost) else set()
    facts = _redact_facts(raw, kinds)
    if kinds and isinstance(facts, dict):
        facts[REDACTED_FACT] = sorted(kinds)
    return facts


def _redact_facts(facts: Any, kinds: set[str]) -> Any:
    if not isinstance(facts, list):
        return redact_value(facts, kinds)
    resources = []
    for item in facts:  # a cloud probe's resources: each says what was redacted from it
        if isinstance(item, ResourceFacts):
            found: set[str] = set()
            cleaned = redact_value(item.facts, found)
            if found:
                cleaned[REDACTED_FACT] = sorted(found)
            item = dataclasses.replace(
                item, facts=cleaned, error=None if item.error is None else redact_text(item.error)[0]
            )
        resources.append(item)
    return resources


def evaluate_policy(
    policy: Policy,
    *,
    subject: Subject,
    platform: str,
    run_probe: ProbeRunner,
    groups: tuple[str, ...] = (),
    waivers: list[Waiver] | None = None,
    today: dt.date | None = None,
    only: set[str] | None = None,
    strict: bool = False,
) -> Evaluation:
    """Judge every check of a policy (or those in `only`) on one subject.

    `strict`: a fact whose value is not of the type its probe's spec declares makes the check `error`,
    naming the probe and the fact. `policy test` and the tests are strict. The agent's scheduled runs are
    not: there a fact of the wrong type is judged as it is (a comparison it cannot take is unknown, so
    `error` anyway; one it can take still tells the truth), because a new OS release whose odd output trips
    one fact must not turn every check on that probe into an error across the fleet before a fix ships.
    """
    inputs = policy.inputs_for(groups)
    today = today or _utcnow().date()
    applicable_waivers = [w for w in waivers or [] if w.policy in (None, policy.id)]
    results: list[Result] = []
    expired: dict[str, Waiver] = {}
    for check in policy.checks:
        if only is not None and check.id not in only:
            continue
        for result in evaluate_check(
            policy, check, subject=subject, platform=platform, run_probe=run_probe, inputs=inputs, strict=strict
        ):
            _apply_waivers(result, policy, check, groups, applicable_waivers, today, expired)
            results.append(result)
    return Evaluation(results, sorted(expired.values(), key=lambda w: w.id))


def evaluate_check(
    policy: Policy,
    check: Check,
    *,
    subject: Subject,
    platform: str,
    run_probe: ProbeRunner,
    inputs: dict[str, Any],
    strict: bool = False,
) -> list[Result]:
    started = time.monotonic()
    evaluated_at = _utcnow().isoformat(timespec="seconds")

    def result(
        status: Status, reason: str = "", observed: dict[str, Any] | None = None, on: Subject = subject
    ) -> Result:
        return Result(
            check_id=check.id,
            title=check.title,
            status=status,
            severity=check.severity,
            weight=check.weight,
            reason=reason,
            observed=observed or {},
            expectation=substitute_inputs(check.raw_expect, inputs),
            frameworks=check.frameworks,
            policy_id=policy.id,
            policy_version=policy.version,
            policy_hash=policy.sha256,
            evaluated_at=evaluated_at,
            duration_ms=int((time.monotonic() - started) * 1000),
            subject=on,
        )

    if check.platforms is not None and platform not in check.platforms:
        return [result(Status.NOT_APPLICABLE, f"applies to {', '.join(check.platforms)}; this is {platform}")]
    spec = registry.get(check.probe.name)
    if spec is None or platform not in spec.collectors:
        return [result(Status.NOT_APPLICABLE, f"probe {check.probe.name} does not run on {platform}")]

    if check.applicable_if is not None:
        condition = check.applicable_if
        try:
            condition_facts = run_probe(resolve_params(condition.probe, inputs))
        except ProbeError as exc:
            return [result(Status.ERROR, f"cannot tell whether the check applies: {exc.reason}")]
        broken = _contract_breaks(condition.probe.name, condition_facts) if strict else ""
        if broken:
            return [result(Status.ERROR, f"cannot tell whether the check applies: {broken}", condition_facts)]
        if isinstance(condition_facts, dict):
            outcome = bounded(condition.expect, condition_facts, inputs)
            if outcome.truth is Truth.FALSE:
                return [result(Status.NOT_APPLICABLE, condition.reason)]
            if outcome.truth is Truth.UNKNOWN:
                reason = "cannot tell whether the check applies: " + "; ".join(outcome.details)
                return [result(Status.ERROR, reason, condition_facts)]

    try:
        facts = run_probe(resolve_params(check.probe, inputs))
    except ProbeError as exc:
        return [result(Status.ERROR, exc.reason)]

    if isinstance(facts, list):  # a resource-scoped cloud probe: one result per resource
        results = []
        for resource in facts:
            assert isinstance(resource, ResourceFacts)
            on = Subject(SubjectKind.CLOUD_RESOURCE, resource.resource_id, resource.name)
            if resource.error is not None:
                results.append(result(Status.ERROR, resource.error, resource.facts, on))
                continue
            broken = _contract_breaks(check.probe.name, resource.facts) if strict else ""
            if broken:
                results.append(result(Status.ERROR, broken, resource.facts, on))
                continue
            status, reason = judge(bounded(check.expect, resource.facts, inputs))
            results.append(result(status, _with_redaction_note(reason, resource.facts), resource.facts, on))
        return results
    broken = _contract_breaks(check.probe.name, facts) if strict else ""
    if broken:
        return [result(Status.ERROR, broken, facts if isinstance(facts, dict) else None)]
    status, reason = judge(bounded(check.expect, facts, inputs))
    return [result(status, _with_redaction_note(reason, facts), facts)]


def bounded(expect: Expr, facts: Any, inputs: dict[str, Any]) -> Outcome:
    """The expectation's outcome, its regular expressions held to one time budget (checks.regex_budget)."""
    try:
        with time_limit():
            return expect.evaluate(facts, inputs)
    except RegexTooSlow as exc:
        return Outcome(Truth.UNKNOWN, [exc.reason or f"a regular expression was stopped after {exc.seconds:g} s"])


def _contract_breaks(probe: str, facts: Any) -> str:
    """Strict mode's reason: how the facts break the probe's spec ("" when they keep it)."""
    spec = registry.get(probe)
    if spec is None:
        return ""
    return "; ".join(fact_problems(spec, facts, ignore=(REDACTED_FACT,)))


def _with_redaction_note(reason: str, facts: Any) -> str:
    kinds = facts.get(REDACTED_FACT) if isinstance(facts, dict) else None
    if not kinds:
        return reason
    note = f"secret-looking content ({', '.join(kinds)}) was redacted from the observed facts"
    return f"{reason}; {note}" if reason else note


def judge(outcome: Outcome) -> tuple[Status, str]:
    if outcome.truth is Truth.TRUE:
        return Status.PASS, ""
    if outcome.truth is Truth.FALSE:
        return Status.FAIL, "; ".join(outcome.details)
    return Status.ERROR, "; ".join(outcome.details)


def _apply_waivers(
    result: Result,
    policy: Policy,
    check: Check,
    groups: tuple[str, ...],
    waivers: list[Waiver],
    today: dt.date,
    expired: dict[str, Waiver],
) -> None:
    """A live waiver turns a fail or error into `waived`; an expired one stops applying and is reported."""
    subject = result.subject
    assert subject is not None
    for waiver in waivers:
        if not waiver.applies_to(policy.id, check.id) or not waiver.scope.covers(subject, groups):
            continue
        if waiver.expired(today):
            expired[waiver.id] = waiver
            note = f"waiver {waiver.id} expired on {waiver.expires.isoformat()} and no longer applies"
            result.reason = f"{result.reason}; {note}" if result.reason else note
            continue
        if result.status in (Status.FAIL, Status.ERROR):
            result.waived_status = result.status
            result.status = Status.WAIVED
            result.waiver_id = waiver.id
            accepted = f"accepted risk: waiver {waiver.id} approved by {waiver.approved_by} until {waiver.expires}"
            result.reason = f"{accepted}; {result.reason}" if result.reason else accepted
            return
