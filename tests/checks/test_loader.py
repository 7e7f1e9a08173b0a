"""Loading policies: malformed files rejected with the right file:line, valid ones loaded whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from checks.policy.loader import load_files, load_policy_file
from policies import shipped_path, shipped_policies

Write = Callable[[str, str], Path]

HEADER = """\
id: demo
version: "1.0"
title: Demo policy
inputs:
  max_days:
    type: integer
    default: 14
    description: Allowed age
checks:
"""

GOOD_CHECK = """\
  - id: aslr
    title: ASLR on
    description: d
    rationale: r
    remediation: fix it
    severity: medium
    probe: {name: sysctl, params: {name: kernel.randomize_va_space}}
    expect: {fact: int_value, eq: 2}
"""


def issues_of(path: Path) -> list[str]:
    loaded = load_files([str(path)])
    return [f"{Path(i.source).name}:{i.line}: {i.message}" for i in loaded.issues]


def test_valid_policy_loads(write: Write) -> None:
    policy = load_policy_file(write("p.yaml", HEADER + GOOD_CHECK))
    assert policy.id == "demo"
    assert [c.id for c in policy.checks] == ["aslr"]
    assert policy.checks[0].line == 10
    assert len(policy.sha256) == 64


@pytest.mark.parametrize("path", shipped_policies(), ids=lambda p: p.name)
def test_shipped_policies_are_valid(path: Path) -> None:
    assert not issues_of(path)


# Each case: the check text appended after GOOD_CHECK (so the bad check starts on line 18), and the
# exact issue expected.
MALFORMED = {
    "unknown probe": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctll, params: {name: a.b}}
    expect: {fact: value, eq: "1"}
""",
        "p.yaml:24: checks[1].probe.name: unknown probe 'sysctll'; did you mean 'sysctl'?",
    ),
    "unknown operator": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: value
      equals: "1"
""",
        "p.yaml:27: unknown operator 'equals'; expected one of eq, ne, lt, lte, gt, gte, in, contains, "
        "matches, exists, every_item, any_item, count",
    ),
    "bad severity": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: urgent
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: value, eq: "1"}
""",
        "p.yaml:23: checks[1].severity: unknown value 'urgent'; expected one of: critical, high, medium, low, info",
    ),
    "missing field": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: value, eq: "1"}
""",
        "p.yaml:18: checks[1]: missing required field 'remediation'",
    ),
    "duplicate check id": (
        """\
  - id: aslr
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: value, eq: "1"}
""",
        "p.yaml:18: duplicate check id 'aslr' (first defined at line 10)",
    ),
    "unknown fact": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: valeu, eq: "1"}
""",
        "p.yaml:25: unknown fact 'valeu': no field 'valeu' (known: exists, int_value, value)",
    ),
    "wrong operand type": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: exists
      gt: 3
""",
        "p.yaml:27: gt cannot compare exists (a boolean) with an integer",
    ),
    "bad probe parameter type": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe:
      name: command
      params:
        argv: ls -l
    expect: {fact: exit_code, eq: 0}
""",
        "p.yaml:27: checks[1].probe.params.argv: expected a list, got 'ls -l'",
    ),
    "unknown probe parameter": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe:
      name: file
      params: {path: /etc/passwd, follow: true}
    expect: {fact: exists, eq: true}
""",
        "p.yaml:26: checks[1].probe.params: unknown key 'follow'; expected one of: hash, path",
    ),
    "missing probe parameter": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: file, params: {hash: true}}
    expect: {fact: exists, eq: true}
""",
        "p.yaml:24: checks[1].probe.params: missing required field 'path'",
    ),
    "invalid regex": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: value
      matches: "([a-z"
""",
        "p.yaml:27: invalid regular expression '([a-z': unterminated character set at position 1",
    ),
    "unknown input": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: int_value
      lte: {input: max_dayz}
""",
        "p.yaml:27: unknown input 'max_dayz' (inputs: max_days)",
    ),
    "two operators": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: int_value
      gt: 1
      lt: 5
""",
        "p.yaml:25: a comparison takes exactly one operator; found 2 operators (gt, lt)",
    ),
    "unsupported platform": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    platforms: [windows]
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: int_value, eq: 1}
""",
        "p.yaml:24: probe sysctl has no collector for windows (it runs on darwin, linux)",
    ),
    "every_item on a scalar": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      fact: value
      every_item: {fact: ., eq: "1"}
""",
        "p.yaml:26: value is a string, not a list",
    ),
    "unknown key in check": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    severtiy: high
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: int_value, eq: 1}
""",
        "p.yaml:24: checks[1]: unknown key 'severtiy'; did you mean 'severity'?",
    ),
    "bad check id": (
        """\
  - id: Bad Id
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: int_value, eq: 1}
""",
        "p.yaml:18: checks[1].id: 'Bad Id' does not have the expected form (^[a-z0-9][a-z0-9._-]*$)",
    ),
    "bad framework control": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: int_value, eq: 1}
    frameworks:
      ncsc_caf: [B4d]
""",
        "p.yaml:27: checks[1].frameworks.ncsc_caf[0]: 'B4d' does not have the expected form (^[A-D][0-9]\\.[a-f]$)",
    ),
    "duplicate yaml key": (
        """\
  - id: x
    title: t
    title: again
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect: {fact: int_value, eq: 1}
""",
        "p.yaml:20: duplicate key 'title'",
    ),
    "empty all": (
        """\
  - id: x
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: sysctl, params: {name: a.b}}
    expect:
      all: []
""",
        "p.yaml:26: all takes a non-empty list of expectations",
    ),
    "yaml syntax": (
        """\
  - id: x
    title: [unclosed
    description: d
""",
        "p.yaml:20: invalid YAML: expected ',' or ']', but got ':'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_policy_is_rejected_at_the_right_line(write: Write, case: str) -> None:
    text, expected = MALFORMED[case]
    assert issues_of(write("p.yaml", HEADER + GOOD_CHECK + text)) == [expected]


def test_every_problem_is_reported_not_just_the_first(write: Write) -> None:
    bad = MALFORMED["duplicate check id"][0] + MALFORMED["unknown fact"][0].replace("id: x", "id: y")
    issues = issues_of(write("p.yaml", HEADER + GOOD_CHECK + bad))
    assert len(issues) == 2


def test_unquoted_version_gets_a_hint(write: Write) -> None:
    issues = issues_of(write("p.yaml", HEADER.replace('"1.0"', "1.0") + GOOD_CHECK))
    assert issues == ['p.yaml:2: version: expected a string, got 1.0 (quote it: "1.0")']


def test_input_default_of_the_wrong_type(write: Write) -> None:
    issues = issues_of(write("p.yaml", HEADER.replace("default: 14", "default: fourteen") + GOOD_CHECK))
    assert issues == ["p.yaml:7: inputs.max_days.default: 'fourteen' is not of the declared type integer"]


def test_override_of_unknown_input(write: Write) -> None:
    text = HEADER + GOOD_CHECK + "overrides:\n  - groups: [servers]\n    inputs: {max_dais: 30}\n"
    assert issues_of(write("p.yaml", text)) == ["p.yaml:20: override of unknown input 'max_dais' (inputs: max_days)"]


def test_input_reference_in_probe_params_is_type_checked(write: Write) -> None:
    text = HEADER + GOOD_CHECK.replace("{name: kernel.randomize_va_space}", "{name: {input: max_days}}")
    assert issues_of(write("p.yaml", text)) == ["p.yaml:16: checks[0].probe.params.name: expected a string, got 14"]


def test_test_section_problems(write: Write) -> None:
    text = (
        HEADER
        + GOOD_CHECK
        + """\
tests:
  - name: t1
    check: nope
    facts: {}
    status: pass
  - name: t2
    check: aslr
    facts: {int_value: "2"}
    status: pass
"""
    )
    assert issues_of(write("p.yaml", text)) == [
        "p.yaml:20: test 't1' names unknown check 'nope'",
        "p.yaml:25: facts for probe sysctl: int_value: expected a whole number, got '2'",
    ]


def test_missing_file_and_not_a_mapping(write: Write, tmp_path: Path) -> None:
    assert issues_of(tmp_path / "absent.yaml") == ["absent.yaml:0: no such file"]
    assert issues_of(write("list.yaml", "- a\n- b\n")) == [
        "list.yaml:1: a policy file is a mapping with id, version, title and checks"
    ]


def test_two_policies_with_one_id(write: Write) -> None:
    first = write("a.yaml", HEADER + GOOD_CHECK)
    second = write("b.yaml", HEADER + GOOD_CHECK)
    loaded = load_files([str(first), str(second)])
    assert [i.message for i in loaded.issues] == [f"policy id 'demo' is also used by {first}"]


def test_baseline_is_the_default_policy() -> None:
    assert shipped_path("baseline.yaml").is_file()
