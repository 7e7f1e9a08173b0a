"""The policy loader and evaluator under hostile input.

- Policy text of any shape (arbitrary, or a shipped policy with lines cut, doubled or garbled) is loaded,
  or refused with a PolicyError whose every issue names a line and says what is wrong.
- A policy document with values replaced by others of any type, at any depth, likewise.
- Any expectation the loader accepts, judged on facts of any type, gives a status (pass, fail or error)
  with a reason for anything but a pass: never an exception, never a pass on facts it could not read.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from checks.policy.evaluate import evaluate_check
from checks.policy.loader import PolicyError, load_policy_document, load_policy_text
from checks.results import Status, Subject, SubjectKind
from policies import shipped_path
from tests.agent.helpers import small_policy
from tests.fuzz.test_parsers import json_values, mangled
from tests.fuzz.test_wire_and_reports import finite_json
from tests.reliability.figures import Figures

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

# the smaller shipped policies, and the small test policy as YAML: the baseline is long, and loading it a
# hundred times would cost a minute without trying anything the others do not
SHIPPED = [shipped_path("azure.yaml").read_text(encoding="utf-8"), yaml.safe_dump(small_policy(), sort_keys=False)]
SUBJECT = Subject(SubjectKind.HOST, "ag-fuzz", "fuzz")
FILE_FACTS = [
    "exists",
    "is_dir",
    "mode",
    "owner",
    "group",
    "size",
    "world_readable",
    "world_writable",
    "group_writable",
]
OPERATORS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "matches", "exists"]


def check_issues(error: PolicyError) -> None:
    assert error.issues, "a PolicyError names at least one problem"
    for issue in error.issues:
        assert issue.line >= 0 and issue.message.strip(), issue


@given(text=st.one_of(st.text(max_size=300), mangled(SHIPPED)))
def test_policy_text_is_loaded_or_refused_line_by_line(text: str, figures: Figures) -> None:
    """Policy YAML of any shape loads, or is refused with issues that each name a line."""
    figures.add("examples")
    try:
        load_policy_text(text, "fuzz.yaml")
    except PolicyError as exc:
        check_issues(exc)
        figures.add("refused")


@st.composite
def damaged_policy(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(small_policy())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: (draw(json_values) if draw(st.integers(0, 8)) == 0 else walk(v)) for k, v in node.items()
                   if draw(st.integers(0, 12))}  # fmt: skip
            if draw(st.integers(0, 10)) == 0:
                out[draw(st.text(max_size=10))] = draw(json_values)  # an unknown key
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return draw(json_values) if draw(st.integers(0, 5)) == 0 else node

    return walk(document)


@given(document=st.one_of(damaged_policy(), json_values))
def test_policy_documents_are_loaded_or_refused(document: Any, figures: Figures) -> None:
    """A policy document with any value replaced (a bundle from a collector) loads or is refused clearly."""
    figures.add("examples")
    try:
        load_policy_document(document, "bundle")
    except PolicyError as exc:
        check_issues(exc)
        figures.add("refused")


comparison = st.builds(
    lambda fact, op, value: {"fact": fact, op: value},
    st.sampled_from(FILE_FACTS + ["missing.fact"]),
    st.sampled_from(OPERATORS),
    finite_json,
)
expectations = st.recursive(
    comparison,
    lambda inner: st.builds(
        lambda kind, items: {kind: items},
        st.sampled_from(["all", "any", "none"]),
        st.lists(inner, min_size=1, max_size=3),
    ),  # fmt: skip
    max_leaves=6,
)


@given(expect=expectations, facts=st.dictionaries(st.sampled_from(FILE_FACTS), json_values, max_size=9))
def test_any_accepted_expectation_judges_any_facts(
    expect: dict[str, Any], facts: dict[str, Any], figures: Figures
) -> None:
    """An expectation the loader accepts gives pass, fail or error on any facts, with a reason unless it passes."""
    figures.add("examples")
    document = small_policy()
    document["checks"] = [dict(document["checks"][0], expect=expect)]
    try:
        policy = load_policy_document(document, "fuzz")
    except PolicyError as exc:
        check_issues(exc)
        figures.add("refused_by_loader")
        return
    (check,) = policy.checks
    (result,) = evaluate_check(policy, check, subject=SUBJECT, platform="linux", run_probe=lambda ref: facts, inputs={})
    assert result.status in (Status.PASS, Status.FAIL, Status.ERROR)
    if result.status is not Status.PASS:
        assert result.reason.strip(), result
    figures.add(f"judged_{result.status.value}")


@pytest.mark.parametrize("written", [".inf", "-.inf", ".nan", ".NaN"])
def test_an_infinite_number_in_a_policy_is_an_issue_not_a_crash(written: str) -> None:
    """YAML's infinities and NaN have no canonical JSON (the policy's hash): refused at their line."""
    text = yaml.safe_dump(small_policy(), sort_keys=False).replace("eq: true", f"eq: {written}", 1)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if written in content)
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "inf.yaml")
    (issue,) = caught.value.issues
    assert (issue.source, issue.line) == ("inf.yaml", line)
    assert written.lower() in issue.message and "finite number" in issue.message, issue.message


def test_an_infinite_number_in_a_bundle_is_an_issue_not_a_crash() -> None:
    """The same from parsed data (Python's json reads Infinity and NaN), where there are no lines."""
    document = small_policy()
    document["checks"][0]["expect"] = {"fact": "exists", "eq": float("inf")}
    with pytest.raises(PolicyError, match=r"checks\[0\]\.expect\.eq: \.inf is not allowed"):
        load_policy_document(document, "bundle")
