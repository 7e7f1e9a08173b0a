"""`policy test`: run a policy's `tests:` section on recorded facts, without touching the machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.policy.evaluate import evaluate_check
from checks.policy.model import Check, Policy, PolicyTest, ProbeRef
from checks.probes import registry
from checks.probes.host import ProbeError
from checks.results import Result, Status, Subject, SubjectKind


@dataclass
class TestOutcome:
    test: PolicyTest
    result: Result
    passed: bool
    problem: str = ""


def run_policy_tests(policy: Policy) -> list[TestOutcome]:
    outcomes: list[TestOutcome] = []
    for test in policy.tests:
        check = policy.check(test.check)
        assert check is not None  # the loader checked the reference
        spec = registry.get(check.probe.name)
        assert spec is not None
        platform = test.platform or (check.platforms[0] if check.platforms else spec.platforms[0])

        subject = Subject(SubjectKind.HOST, "policy-test", test.name)
        results = evaluate_check(
            policy,
            check,
            subject=subject,
            platform=platform,
            run_probe=_Sequenced(check, test),
            inputs=policy.inputs_for(test.groups),
            # Recorded facts of a type the probe never returns would prove nothing about the check.
            strict=True,
        )
        result = results[0]
        problem = ""
        if result.status is not test.status:
            problem = f"expected {test.status.value}, got {result.status.value}"
            if result.reason:
                problem += f" ({result.reason})"
        elif test.reason_contains and test.reason_contains not in result.reason:
            problem = f"reason {result.reason!r} does not contain {test.reason_contains!r}"
        outcomes.append(TestOutcome(test, result, not problem, problem))
    return outcomes


class _Sequenced:
    """Answers the applicable_if probe with `applicable_facts` and the check's probe with `facts`.

    The evaluator asks for the condition first, then for the check's own facts; when both use the same
    probe, the order tells them apart.
    """

    def __init__(self, check: Check, test: PolicyTest) -> None:
        self.check = check
        self.test = test
        self.asked_condition = False

    def __call__(self, ref: ProbeRef) -> Any:
        condition = self.check.applicable_if
        if condition is not None and not self.asked_condition:
            self.asked_condition = True
            if self.test.applicable_error is not None:
                raise ProbeError(self.test.applicable_error)
            if self.test.applicable_facts is not None:
                return self.test.applicable_facts
            if condition.probe.name != self.check.probe.name:
                raise ProbeError(f"test {self.test.name!r} gives no applicable_facts for probe {condition.probe.name}")
        if self.test.probe_error is not None:
            raise ProbeError(self.test.probe_error)
        return self.test.facts


__all__ = ["Status", "TestOutcome", "run_policy_tests"]
