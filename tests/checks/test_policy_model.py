"""Hash stability, inputs and overrides, applicable_if, probe errors, waivers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from checks.policy.evaluate import CachingRunner, evaluate_policy
from checks.policy.loader import PolicyError, load_policy_text
from checks.policy.model import ProbeRef
from checks.policy.waiverfile import load_waiver_file
from checks.probes.host import ProbeError
from checks.probes.replay import ReplayHost
from checks.results import Result, Status, Subject, SubjectKind, score

Write = Callable[[str, str], Path]

POLICY = """\
id: demo
version: "2.1"
title: Demo
scoring: weighted
inputs:
  max_age:
    type: integer
    default: 14
    description: Allowed age in days
overrides:
  - groups: [servers]
    inputs: {max_age: 30}
  - groups: [critical]
    inputs: {max_age: 7}
checks:
  - id: age
    title: Young enough
    description: d
    rationale: r
    remediation: m
    severity: high
    probe: {name: sysctl, params: {name: test.age}}
    expect: {fact: int_value, lte: {input: max_age}}
  - id: ssh-config
    title: SSH configured
    description: d
    rationale: r
    remediation: m
    severity: medium
    probe: {name: key_value_file, params: {path: /etc/ssh/sshd_config}}
    applicable_if:
      probe: {name: service, params: {name: ssh}}
      expect: {fact: exists, eq: true}
      reason: no SSH server installed
    expect: {fact: settings.permitrootlogin, eq: "no"}
"""


class FakeProbes:
    """Answers probe invocations from a table, counting calls; a string answer is a probe error."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[ProbeRef] = []
        self.platform = "linux"

    def __call__(self, ref: ProbeRef) -> Any:
        self.calls.append(ref)
        answer = self.answers[ref.name]
        if isinstance(answer, str):
            raise ProbeError(answer)
        return answer


HOST = Subject(SubjectKind.HOST, "agent-1", "web01")


def run(
    answers: dict[str, Any],
    groups: tuple[str, ...] = (),
    waivers: Any = None,
    today: dt.date | None = None,
    text: str = POLICY,
) -> dict[str, Result]:
    policy = load_policy_text(text)
    evaluation = evaluate_policy(
        policy,
        subject=HOST,
        platform="linux",
        run_probe=FakeProbes(answers),
        groups=groups,
        waivers=waivers,
        today=today,
    )
    return {r.check_id: r for r in evaluation.results}


SSH_ON = {"exists": True, "active": True, "enabled": True, "state": "active"}
ROOT_NO = {"exists": True, "settings": {"permitrootlogin": "no"}, "numbers": {}}


def test_hash_ignores_key_order_comments_and_whitespace() -> None:
    reordered = POLICY.replace('id: demo\nversion: "2.1"\n', '# a comment\nversion:   "2.1"\n\nid: demo\n')
    reordered = reordered.replace(
        "{name: sysctl, params: {name: test.age}}", "{params: {name: test.age}, name: sysctl}"
    )
    assert load_policy_text(reordered).sha256 == load_policy_text(POLICY).sha256


def test_hash_changes_with_content_but_not_with_tests() -> None:
    base = load_policy_text(POLICY).sha256
    assert load_policy_text(POLICY.replace("default: 14", "default: 15")).sha256 != base
    with_tests = POLICY + "tests:\n  - {name: t, check: age, facts: {int_value: 1}, status: pass}\n"
    assert load_policy_text(with_tests).sha256 == base


def test_results_name_the_policy_they_were_judged_against() -> None:
    result = run(
        {
            "sysctl": {"exists": True, "value": "3", "int_value": 3},
            "service": SSH_ON,
            "key_value_file": ROOT_NO,
        }
    )["age"]
    policy = load_policy_text(POLICY)
    assert (result.policy_id, result.policy_version, result.policy_hash) == ("demo", "2.1", policy.sha256)
    assert result.observed == {"exists": True, "value": "3", "int_value": 3}
    assert result.expectation == {"fact": "int_value", "lte": 14}  # inputs resolved


@pytest.mark.parametrize(
    ("groups", "age", "status"),
    [
        ((), 14, Status.PASS),
        ((), 15, Status.FAIL),
        (("servers",), 30, Status.PASS),
        (("servers",), 31, Status.FAIL),
        (("servers", "critical"), 8, Status.FAIL),
    ],
)
def test_inputs_and_group_overrides(groups: tuple[str, ...], age: int, status: Status) -> None:
    answers = {
        "sysctl": {"exists": True, "value": str(age), "int_value": age},
        "service": SSH_ON,
        "key_value_file": ROOT_NO,
    }
    assert run(answers, groups)["age"].status is status


def test_probe_error_is_an_error_never_pass_or_fail() -> None:
    results = run(
        {
            "sysctl": "permission denied reading /proc/sys/test/age",
            "service": SSH_ON,
            "key_value_file": ROOT_NO,
        }
    )
    assert results["age"].status is Status.ERROR
    assert results["age"].reason == "permission denied reading /proc/sys/test/age"


def test_missing_fact_is_an_error_with_a_reason() -> None:
    results = run(
        {
            "sysctl": {"exists": False, "value": None, "int_value": None},
            "service": SSH_ON,
            "key_value_file": {"exists": True, "settings": {}, "numbers": {}},
        }
    )
    assert results["age"].status is Status.ERROR
    assert "int_value is unknown" in results["age"].reason
    assert results["ssh-config"].status is Status.ERROR
    assert "settings.permitrootlogin is missing" in results["ssh-config"].reason


def test_applicable_if() -> None:
    absent = {"exists": False, "active": False, "enabled": False, "state": "not-found"}
    results = run(
        {
            "sysctl": {"exists": True, "value": "1", "int_value": 1},
            "service": absent,
            "key_value_file": ROOT_NO,
        }
    )
    assert results["ssh-config"].status is Status.NOT_APPLICABLE
    assert results["ssh-config"].reason == "no SSH server installed"
    results = run(
        {
            "sysctl": {"exists": True, "value": "1", "int_value": 1},
            "service": "systemctl missing",
            "key_value_file": ROOT_NO,
        }
    )
    assert results["ssh-config"].status is Status.ERROR
    assert results["ssh-config"].reason == "cannot tell whether the check applies: systemctl missing"


def test_other_platform_is_not_applicable() -> None:
    policy = load_policy_text(POLICY)
    evaluation = evaluate_policy(
        policy,
        subject=HOST,
        platform="windows",
        run_probe=FakeProbes({"service": SSH_ON, "key_value_file": ROOT_NO}),
    )
    age = {r.check_id: r for r in evaluation.results}["age"]
    assert age.status is Status.NOT_APPLICABLE and age.reason == "probe sysctl does not run on windows"


def test_each_probe_invocation_runs_once(tmp_path: Path) -> None:
    """Two checks reading the same sysctl: the machine is asked once (CachingRunner over a recording)."""
    text = POLICY.replace(
        "probe: {name: key_value_file, params: {path: /etc/ssh/sshd_config}}",
        "probe: {name: sysctl, params: {name: test.age}}",
    ).replace('expect: {fact: settings.permitrootlogin, eq: "no"}', "expect: {fact: exists, eq: true}")
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "platform": "linux",
                "files": {"/proc/sys/test/age": {"content": "3\n"}},
                "commands": [
                    {
                        "argv": [
                            "systemctl",
                            "show",
                            "--property=LoadState,ActiveState,SubState,UnitFileState",
                            "--no-pager",
                            "--",
                            "ssh",
                        ],
                        "stdout": "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n",
                    }
                ],
            }
        )
    )

    class CountingHost(ReplayHost):
        reads = 0

        def read_text(self, path: str, *, max_bytes: int = 1 << 20) -> str:
            CountingHost.reads += 1
            return super().read_text(path, max_bytes=max_bytes)

    host = CountingHost(tmp_path)
    policy = load_policy_text(text)
    evaluation = evaluate_policy(policy, subject=HOST, platform="linux", run_probe=CachingRunner(host))
    assert [r.status for r in evaluation.results] == [Status.PASS, Status.PASS]
    assert CountingHost.reads == 1


def test_scores_weight_by_severity_and_keep_errors_beside() -> None:
    results = list(
        run(
            {
                "sysctl": {"exists": True, "value": "99", "int_value": 99},
                "service": SSH_ON,
                "key_value_file": ROOT_NO,
            }
        ).values()
    )
    simple = score(results)
    weighted = score(results, weighted=True)
    assert (simple.passed, simple.failed, simple.ratio) == (1, 1, 0.5)
    assert (weighted.passed, weighted.failed) == (3.0, 5.0)  # medium passed, high failed
    errors = list(run({"sysctl": "boom", "service": SSH_ON, "key_value_file": ROOT_NO}).values())
    assert score(errors).errors == 1 and score(errors).ratio == 1.0


WAIVERS = """\
waivers:
  - id: W-1
    check: age
    scope: {hosts: [web*]}
    justification: Legacy application pinned until migration
    requested_by: alice@example.gov.uk
    approved_by: bob@example.gov.uk
    ticket: RISK-12
    expires: 2026-12-31
  - id: W-2
    check: ssh-config
    policy: demo
    scope: {groups: [kiosk]}
    justification: Kiosks have no SSH users
    requested_by: carol@example.gov.uk
    approved_by: dave@example.gov.uk
    expires: 2026-06-30
"""

FAILING = {
    "sysctl": {"exists": True, "value": "99", "int_value": 99},
    "service": SSH_ON,
    "key_value_file": {"exists": True, "settings": {"permitrootlogin": "yes"}, "numbers": {}},
}


def test_waiver_turns_a_fail_into_waived_within_scope(write: Write) -> None:
    waivers = load_waiver_file(write("w.yaml", WAIVERS))
    results = run(FAILING, waivers=waivers, today=dt.date(2026, 12, 31))
    assert results["age"].status is Status.WAIVED
    assert results["age"].waived_status is Status.FAIL
    assert results["age"].waiver_id == "W-1"
    assert "approved by bob@example.gov.uk" in results["age"].reason
    # W-2 is scoped to the kiosk group: this host is not in it
    assert results["ssh-config"].status is Status.FAIL


def test_waiver_scope_by_group_and_host_pattern(write: Write) -> None:
    waivers = load_waiver_file(write("w.yaml", WAIVERS))
    policy = load_policy_text(POLICY)
    other = Subject(SubjectKind.HOST, "agent-2", "db01")
    evaluation = evaluate_policy(
        policy,
        subject=other,
        platform="linux",
        run_probe=FakeProbes(FAILING),
        groups=("kiosk",),
        waivers=waivers,
        today=dt.date(2026, 6, 1),
    )
    statuses = {r.check_id: r.status for r in evaluation.results}
    assert statuses == {"age": Status.FAIL, "ssh-config": Status.WAIVED}


def test_expired_waiver_stops_applying_and_is_reported(write: Write) -> None:
    waivers = load_waiver_file(write("w.yaml", WAIVERS))
    policy = load_policy_text(POLICY)
    evaluation = evaluate_policy(
        policy,
        subject=HOST,
        platform="linux",
        run_probe=FakeProbes(FAILING),
        waivers=waivers,
        today=dt.date(2027, 1, 1),
    )
    age = {r.check_id: r for r in evaluation.results}["age"]
    assert age.status is Status.FAIL
    assert "waiver W-1 expired on 2026-12-31 and no longer applies" in age.reason
    assert [w.id for w in evaluation.expired_waivers] == ["W-1"]


def test_waiver_does_not_hide_a_pass(write: Write) -> None:
    waivers = load_waiver_file(write("w.yaml", WAIVERS))
    passing = dict(FAILING, sysctl={"exists": True, "value": "1", "int_value": 1})
    assert run(passing, waivers=waivers, today=dt.date(2026, 1, 1))["age"].status is Status.PASS


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("approved_by: bob@example.gov.uk", "approved_by: Alice@Example.gov.uk"),
            "w.yaml:7: waiver W-1: the approver must not be the requester",
        ),
        (("    expires: 2026-12-31\n", ""), "w.yaml:2: waiver W-1: missing required field 'expires'"),
        (
            ("expires: 2026-12-31", "expires: next year"),
            "w.yaml:9: waiver W-1: expires 'next year' is not a date; use YYYY-MM-DD",
        ),
        (
            ("expires: 2026-12-31", "expires: 2026-02-30"),
            "w.yaml:9: waiver W-1: expires '2026-02-30' is not a date; use YYYY-MM-DD",
        ),
        (
            ("scope: {hosts: [web*]}", "scope: {}"),
            "w.yaml:4: waiver W-1: scope is empty; give at least one of all, groups, hosts, resources, tenants",
        ),
        (
            ("justification: Legacy application pinned until migration", "justification: ''"),
            "w.yaml:5: waiver W-1: justification is empty",
        ),
        (("id: W-1", "id: ''"), "w.yaml:2: waiver 1: id is empty"),
        (("id: W-2", "id: W-1"), "w.yaml:10: duplicate waiver id 'W-1'"),
    ],
)
def test_bad_waivers_are_rejected(write: Write, change: tuple[str, str], expected: str) -> None:
    path = write("w.yaml", WAIVERS.replace(*change))
    with pytest.raises(PolicyError) as caught:
        load_waiver_file(path)
    assert [f"{Path(i.source).name}:{i.line}: {i.message}" for i in caught.value.issues] == [expected]
