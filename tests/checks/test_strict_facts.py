"""The evaluator's strict mode: a fact of a type its probe's spec does not declare is an `error` naming both."""

from __future__ import annotations

import dataclasses
from typing import Any

from checks.policy.contract import fact_problems, has_type
from checks.policy.evaluate import evaluate_policy
from checks.policy.loader import load_policy_text
from checks.policy.model import Policy, ProbeRef
from checks.policy.testing import run_policy_tests
from checks.probes import registry
from checks.probes.registry import ResourceFacts
from checks.results import Result, Status, Subject, SubjectKind

POLICY = """\
id: strict
version: "1"
title: Strict
checks:
  - id: telnet-absent
    title: No telnet server
    description: d
    rationale: r
    remediation: m
    severity: high
    platforms: [linux]
    probe: {name: package, params: {name: telnetd}}
    expect: {fact: installed, eq: false}
  - id: aslr
    title: ASLR on
    description: d
    rationale: r
    remediation: m
    severity: medium
    platforms: [linux]
    probe: {name: sysctl, params: {name: kernel.randomize_va_space}}
    applicable_if:
      probe: {name: package, params: {name: procps}}
      expect: {fact: installed, eq: true}
      reason: no procps
    expect: {fact: int_value, eq: 2}
tests:
  - name: telnet absent
    check: telnet-absent
    facts: {installed: false, version: null, manager: dpkg}
    status: pass
"""


def spec(name: str) -> registry.ProbeSpec:
    found = registry.get(name)
    assert found is not None
    return found


def run(policy: Policy, facts: dict[str, dict[str, Any]], *, strict: bool) -> dict[str, Result]:
    """Evaluate with recorded facts per probe name: the evaluator's runner interface, no machine read."""

    def answer(ref: ProbeRef) -> Any:
        return facts[ref.name]

    evaluation = evaluate_policy(
        policy, subject=Subject(SubjectKind.HOST, "h"), platform="linux", run_probe=answer, strict=strict
    )
    return {r.check_id: r for r in evaluation.results}


def test_a_fact_of_the_wrong_type_is_named_with_its_probe() -> None:
    package = spec("package")
    assert fact_problems(package, {"installed": False, "version": ["1", "2"], "manager": "dpkg"}) == [
        "probe package returned fact 'version' as a list; its spec says string or null"
    ]
    assert fact_problems(package, {"installed": "no", "manager": None}) == [
        "probe package returned fact 'installed' as a string; its spec says boolean",
        "probe package returned fact 'manager' as null; its spec says string",
    ]
    assert fact_problems(package, {"installed": True, "vendor": "x"}) == [
        "probe package returned fact 'vendor', which its spec does not declare"
    ]
    assert fact_problems(package, ["not", "facts"]) == ["probe package returned a list instead of its facts"]


def test_types_are_json_schema_types() -> None:
    sysctl = spec("sysctl")
    # JSON has one kind of number: 2.0 is a whole number; true is not a number at all.
    assert fact_problems(sysctl, {"exists": True, "value": "2", "int_value": 2.0}) == []
    assert fact_problems(sysctl, {"exists": True, "value": "2", "int_value": True}) == [
        "probe sysctl returned fact 'int_value' as a boolean; its spec says integer or null"
    ]
    assert fact_problems(sysctl, {"exists": True, "int_value": 2.5}) == [
        "probe sysctl returned fact 'int_value' as a number; its spec says integer or null"
    ]
    assert has_type(3, "number") and not has_type(False, "integer") and has_type({}, "object")


def test_items_of_lists_and_missing_facts_when_asked() -> None:
    command = spec("command")
    facts = {"exit_code": 0, "stdout": "", "stderr": "", "truncated": False, "lines": ["a", 7]}
    assert fact_problems(command, facts) == [
        "probe command returned fact 'lines[1]' as an integer; its spec says string"
    ]
    assert fact_problems(command, {"exit_code": 0}, complete=True) == [
        "probe command did not return fact 'stdout', which its spec requires",
        "probe command did not return fact 'stderr', which its spec requires",
        "probe command did not return fact 'truncated', which its spec requires",
    ]
    assert fact_problems(command, {"exit_code": 0}) == []  # a missing fact is the expectation's business
    with_objects = next(s for s in registry.all_probes() if any(f.fields and f.type == "array" for f in s.facts))
    listed = next(f for f in with_objects.facts if f.fields and f.type == "array")
    problems = fact_problems(with_objects, {listed.name: [{"surprise": 1}]})
    assert f"probe {with_objects.name} returned fact '{listed.name}[0].surprise', which its spec does not declare" in (
        problems
    )
    required = [f.name for f in listed.fields if f.required and f.default is None]
    missing = f"probe {with_objects.name} did not return fact '{listed.name}[0].{required[0]}', which its spec requires"
    assert missing in problems


def test_strict_makes_a_wrong_type_an_error_and_lenient_judges_it() -> None:
    policy = load_policy_text(POLICY)
    facts = {
        "package": {"installed": False, "version": ["1", "2"], "manager": "dpkg"},
        "sysctl": {"exists": True, "value": "2", "int_value": 2},
    }
    lenient = run(policy, facts, strict=False)
    assert lenient["telnet-absent"].status is Status.PASS  # the fact the check reads is right
    strict = run(policy, facts, strict=True)
    assert strict["telnet-absent"].status is Status.ERROR
    assert strict["telnet-absent"].reason == (
        "probe package returned fact 'version' as a list; its spec says string or null"
    )
    assert strict["telnet-absent"].observed["version"] == ["1", "2"]  # what the probe said is kept, to be seen
    # The condition's probe breaks its contract too: the check cannot tell whether it applies.
    assert lenient["aslr"].status is Status.NOT_APPLICABLE
    assert strict["aslr"].status is Status.ERROR
    assert strict["aslr"].reason == (
        "cannot tell whether the check applies: probe package returned fact 'version' as a list; "
        "its spec says string or null"
    )


def test_strict_passes_facts_that_keep_the_contract() -> None:
    policy = load_policy_text(POLICY)
    facts = {
        "package": {"installed": True, "version": "2:4.1", "manager": "dpkg"},
        "sysctl": {"exists": True, "value": "2", "int_value": 2},
    }
    got = run(policy, facts, strict=True)
    assert (got["telnet-absent"].status, got["aslr"].status) == (Status.FAIL, Status.PASS)


def test_strict_judges_each_cloud_resource_on_its_own() -> None:
    resource_spec, fact = next(
        (s, f) for s in registry.all_probes() if s.scope == "resource" for f in s.facts if f.type == "boolean"
    )
    text = 'id: cloud\nversion: "1"\ntitle: Cloud\nchecks:\n' + "".join(
        "  " + line + "\n" for line in resource_spec.example.splitlines()
    )
    policy = load_policy_text(text)
    good = ResourceFacts("/r/good", "good", {fact.name: True})
    bad = ResourceFacts("/r/bad", "bad", {fact.name: "yes"})
    platform = resource_spec.platforms[0]
    evaluation = evaluate_policy(
        policy,
        subject=Subject(SubjectKind.CLOUD_RESOURCE, "tenant"),
        platform=platform,
        run_probe=lambda ref: [good, bad],
        strict=True,
    )
    by_resource = {r.subject.id: r for r in evaluation.results if r.subject is not None}
    assert by_resource["/r/bad"].status is Status.ERROR
    assert by_resource["/r/bad"].reason == (
        f"probe {resource_spec.name} returned fact {fact.name!r} as a string; its spec says {fact.type}"
        + (" or null" if fact.nullable else "")
    )
    assert "returned fact" not in by_resource["/r/good"].reason  # judged on its facts, whatever they say


def test_policy_test_is_strict() -> None:
    policy = load_policy_text(POLICY)
    assert [o.passed for o in run_policy_tests(policy)] == [True]
    # The loader refuses recorded facts of the wrong type in a file (tests/checks/test_loader.py); a policy
    # built any other way meets the evaluator's strict mode.
    wrong = dataclasses.replace(policy.tests[0], facts={"installed": False, "version": 1.5, "manager": "dpkg"})
    outcome = run_policy_tests(dataclasses.replace(policy, tests=[wrong]))[0]
    assert not outcome.passed
    assert outcome.problem == (
        "expected pass, got error (probe package returned fact 'version' as a number; its spec says string or null)"
    )
