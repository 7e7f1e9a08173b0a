"""The expect language: every operator and combinator, three-valued logic, lists."""

from __future__ import annotations

from typing import Any

import pytest

from checks.policy.expr import Truth
from checks.policy.expr_parser import ExprParser, FactScope, Problem
from checks.probes.registry import Field


def evaluate(expr: dict[str, Any], facts: dict[str, Any], inputs: dict[str, Any] | None = None) -> Truth:
    problems: list[Problem] = []
    declared = {name: type(value).__name__ for name, value in (inputs or {}).items()}
    types = {"int": "integer", "str": "string", "bool": "boolean", "list": "array", "float": "number"}
    parser = ExprParser({k: types[v] for k, v in declared.items()}, problems)
    parsed = parser.parse(expr, ("expect",), FactScope(None))
    assert parsed is not None, problems
    return parsed.evaluate(facts, inputs or {}).truth


T, F, U = Truth.TRUE, Truth.FALSE, Truth.UNKNOWN


@pytest.mark.parametrize(
    ("expr", "facts", "expected"),
    [
        ({"fact": "a", "eq": 1}, {"a": 1}, T),
        ({"fact": "a", "eq": 1}, {"a": 2}, F),
        ({"fact": "a", "eq": True}, {"a": 1}, F),  # a boolean never equals a number
        ({"fact": "a", "eq": "x"}, {"a": "x"}, T),
        ({"fact": "a", "ne": 1}, {"a": 2}, T),
        ({"fact": "a", "ne": 1}, {"a": 1}, F),
        ({"fact": "a", "lt": 5}, {"a": 4}, T),
        ({"fact": "a", "lt": 5}, {"a": 5}, F),
        ({"fact": "a", "lte": 5}, {"a": 5}, T),
        ({"fact": "a", "lte": 5}, {"a": 6}, F),
        ({"fact": "a", "gt": 5}, {"a": 6}, T),
        ({"fact": "a", "gt": 5}, {"a": 5}, F),
        ({"fact": "a", "gte": 5}, {"a": 5}, T),
        ({"fact": "a", "gte": 5.5}, {"a": 5}, F),
        ({"fact": "a", "lt": "b"}, {"a": "a"}, T),  # strings order lexically (ISO dates)
        ({"fact": "a", "lt": 5}, {"a": "4"}, U),  # incomparable types cannot be judged
        ({"fact": "a", "in": [1, 2]}, {"a": 2}, T),
        ({"fact": "a", "in": [1, 2]}, {"a": 3}, F),
        ({"fact": "a", "contains": "x"}, {"a": ["x", "y"]}, T),
        ({"fact": "a", "contains": "z"}, {"a": ["x", "y"]}, F),
        ({"fact": "a", "contains": "ell"}, {"a": "hello"}, T),
        ({"fact": "a", "contains": "z"}, {"a": "hello"}, F),
        ({"fact": "a", "matches": "^h.l+o$"}, {"a": "hello"}, T),
        ({"fact": "a", "matches": "^x"}, {"a": "hello"}, F),
        ({"fact": "a", "matches": "x"}, {"a": 5}, U),
        ({"fact": "a", "exists": True}, {"a": 0}, T),
        ({"fact": "a", "exists": True}, {}, F),
        ({"fact": "a", "exists": True}, {"a": None}, F),
        ({"fact": "a", "exists": False}, {}, T),
        ({"fact": "a.b.c", "eq": 1}, {"a": {"b": {"c": 1}}}, T),
        ({"fact": "a.b.c", "eq": 1}, {"a": {"b": {}}}, U),
    ],
)
def test_comparison(expr: dict[str, Any], facts: dict[str, Any], expected: Truth) -> None:
    assert evaluate(expr, facts) is expected


def test_missing_and_null_facts_are_unknown_with_a_reason() -> None:
    problems: list[Problem] = []
    parsed = ExprParser({}, problems).parse({"fact": "a", "eq": 1}, (), FactScope(None))
    assert parsed is not None
    missing = parsed.evaluate({}, {})
    assert missing.truth is U and "fact a is missing" in missing.details[0]
    null = parsed.evaluate({"a": None}, {})
    assert null.truth is U and "unknown (null)" in null.details[0]


A_TRUE = {"fact": "t", "eq": True}
A_FALSE = {"fact": "f", "eq": True}
A_UNKNOWN = {"fact": "missing", "eq": True}
FACTS = {"t": True, "f": False}


@pytest.mark.parametrize(
    ("kind", "parts", "expected"),
    [
        ("all", [A_TRUE, A_TRUE], T),
        ("all", [A_TRUE, A_FALSE], F),
        ("all", [A_FALSE, A_UNKNOWN], F),  # false whatever the unknown is
        ("all", [A_TRUE, A_UNKNOWN], U),
        ("any", [A_FALSE, A_TRUE], T),
        ("any", [A_TRUE, A_UNKNOWN], T),  # true whatever the unknown is
        ("any", [A_FALSE, A_UNKNOWN], U),
        ("any", [A_FALSE, A_FALSE], F),
        ("none", [A_FALSE, A_FALSE], T),
        ("none", [A_FALSE, A_TRUE], F),
        ("none", [A_TRUE, A_UNKNOWN], F),
        ("none", [A_FALSE, A_UNKNOWN], U),
    ],
)
def test_combinators_are_three_valued(kind: str, parts: list[dict[str, Any]], expected: Truth) -> None:
    assert evaluate({kind: parts}, FACTS) is expected


def test_nested_combinators() -> None:
    expr = {"all": [A_TRUE, {"any": [A_FALSE, {"none": [A_FALSE]}]}]}
    assert evaluate(expr, FACTS) is T


VOLUMES = {
    "volumes": [
        {"mount": "/", "encrypted": True, "size": 10},
        {"mount": "/data", "encrypted": False, "size": 20},
        {"mount": "/boot", "encrypted": True, "size": 1},
    ]
}


def test_every_item() -> None:
    assert evaluate({"fact": "volumes", "every_item": {"fact": "size", "gt": 0}}, VOLUMES) is T
    assert evaluate({"fact": "volumes", "every_item": {"fact": "encrypted", "eq": True}}, VOLUMES) is F
    assert evaluate({"fact": "volumes", "every_item": {"fact": "x", "eq": True}}, {"volumes": []}) is T


def test_any_item() -> None:
    assert evaluate({"fact": "volumes", "any_item": {"fact": "mount", "eq": "/data"}}, VOLUMES) is T
    assert evaluate({"fact": "volumes", "any_item": {"fact": "mount", "eq": "/home"}}, VOLUMES) is F
    assert evaluate({"fact": "volumes", "any_item": {"fact": "mount", "eq": "/"}}, {"volumes": []}) is F


def test_count_where() -> None:
    unencrypted = {"fact": "volumes", "count": {"where": {"fact": "encrypted", "eq": False}, "eq": 1}}
    assert evaluate(unencrypted, VOLUMES) is T
    assert evaluate({"fact": "volumes", "count": {"lte": 2}}, VOLUMES) is F
    assert evaluate({"fact": "volumes", "count": {"gte": 3}}, VOLUMES) is T


def test_list_item_missing_field_is_unknown_unless_decided() -> None:
    facts = {"volumes": [{"mount": "/", "encrypted": True}, {"mount": "/x"}]}
    assert evaluate({"fact": "volumes", "every_item": {"fact": "encrypted", "eq": True}}, facts) is U
    facts["volumes"].append({"mount": "/y", "encrypted": False})
    assert evaluate({"fact": "volumes", "every_item": {"fact": "encrypted", "eq": True}}, facts) is F


def test_scalar_list_items_use_dot() -> None:
    facts = {"ports": [22, 443]}
    assert evaluate({"fact": "ports", "every_item": {"fact": ".", "lt": 1024}}, facts) is T
    assert evaluate({"fact": "ports", "any_item": {"fact": ".", "eq": 80}}, facts) is F


def test_quantifier_over_a_non_list_is_unknown() -> None:
    assert evaluate({"fact": "a", "every_item": {"fact": ".", "eq": 1}}, {"a": 5}) is U


def test_inputs_are_resolved() -> None:
    expr = {"fact": "age", "lte": {"input": "max_age"}}
    assert evaluate(expr, {"age": 10}, {"max_age": 14}) is T
    assert evaluate(expr, {"age": 20}, {"max_age": 14}) is F


def test_fail_details_name_the_observed_value() -> None:
    problems: list[Problem] = []
    parsed = ExprParser({}, problems).parse(
        {"fact": "volumes", "every_item": {"fact": "encrypted", "eq": True}}, (), FactScope(None)
    )
    assert parsed is not None
    outcome = parsed.evaluate(VOLUMES, {})
    assert outcome.details == ["volumes[1] /data: encrypted = false (expected == true)"]


def test_declared_facts_are_type_checked() -> None:
    problems: list[Problem] = []
    scope = FactScope({"enabled": Field("enabled", "boolean", "x"), "count": Field("count", "integer", "x")})
    parser = ExprParser({}, problems)
    assert parser.parse({"fact": "enabled", "lt": 3}, ("e",), scope) is None
    assert parser.parse({"fact": "count", "eq": "three"}, ("e",), scope) is None
    assert parser.parse({"fact": "enabeld", "eq": True}, ("e",), scope) is None
    assert [p.message for p in problems] == [
        "lt cannot compare enabled (a boolean) with an integer",
        "count is an integer; comparing it with 'three' (string) never holds",
        "unknown fact 'enabeld': no field 'enabeld' (known: count, enabled)",
    ]
