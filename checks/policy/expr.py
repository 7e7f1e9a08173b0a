"""The `expect` language: structured comparisons on a probe's facts, combined with all / any / none.

Evaluation is three-valued (Kleene): a comparison whose fact is missing or null is *unknown*, and a
combination is unknown only when its answer depends on an unknown part. `any` of a true comparison and an
unknown one is true; `all` of a false comparison and an unknown one is false. An unknown outcome becomes an
`error` result naming the missing fact: never a pass or a fail.

This module is the expression tree and its evaluation; `checks.policy.expr_parser` turns the YAML form
into the tree, checking it against the facts the probe declares.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from checks.probes.registry import UNKNOWN_BECAUSE
from checks.regex_budget import RegexTooSlow, too_slow_reason

COMPARISONS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "matches", "exists")
COMBINATORS = ("all", "any", "none")
LIST_OPERATORS = ("every_item", "any_item", "count")
ORDERING = ("lt", "lte", "gt", "gte")
ITEM_SELF = "."

_SYMBOLS = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class Truth(enum.Enum):
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class InputRef:
    name: str

    def __repr__(self) -> str:
        return f"input {self.name}"


@dataclass
class Outcome:
    truth: Truth
    details: list[str] = field(default_factory=list)  # why false, or why unknown


class Expr:
    def evaluate(self, facts: Any, inputs: dict[str, Any]) -> Outcome:
        raise NotImplementedError


@dataclass
class Combination(Expr):
    kind: str  # all | any | none
    parts: list[Expr]

    def evaluate(self, facts: Any, inputs: dict[str, Any]) -> Outcome:
        outcomes = [part.evaluate(facts, inputs) for part in self.parts]
        by_truth: dict[Truth, list[Outcome]] = {t: [] for t in Truth}
        for outcome in outcomes:
            by_truth[outcome.truth].append(outcome)

        def details(truth: Truth) -> list[str]:
            # Two branches unknown for the same fact say so once.
            return list(dict.fromkeys(d for o in by_truth[truth] for d in o.details))

        if self.kind == "all":
            if by_truth[Truth.FALSE]:
                return Outcome(Truth.FALSE, details(Truth.FALSE))
            if by_truth[Truth.UNKNOWN]:
                return Outcome(Truth.UNKNOWN, details(Truth.UNKNOWN))
            return Outcome(Truth.TRUE)
        if self.kind == "any":
            if by_truth[Truth.TRUE]:
                return Outcome(Truth.TRUE)
            if by_truth[Truth.UNKNOWN]:
                return Outcome(Truth.UNKNOWN, details(Truth.UNKNOWN))
            return Outcome(Truth.FALSE, ["none of these held: " + "; ".join(details(Truth.FALSE))])
        # none
        if by_truth[Truth.TRUE]:
            matched = [d for o in by_truth[Truth.TRUE] for d in o.details]
            return Outcome(Truth.FALSE, ["expected none of these, but it held: " + "; ".join(matched)])
        if by_truth[Truth.UNKNOWN]:
            return Outcome(Truth.UNKNOWN, details(Truth.UNKNOWN))
        return Outcome(Truth.TRUE)


_MISSING = object()


def lookup(facts: Any, path: str) -> Any:
    """The value at a dotted path, or _MISSING. `.` is the item itself inside every_item / any_item."""
    if path == ITEM_SELF:
        return facts
    current = facts
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 120 else text[:117] + "..."


def _fact_label(path: str) -> str:
    return "the item" if path == ITEM_SELF else path


def _why_unknown(facts: Any, path: str) -> str:
    """The probe's own words for a null fact (`unknown_because`), else the generic ones."""
    reasons = facts.get(UNKNOWN_BECAUSE) if isinstance(facts, dict) else None
    reason = reasons.get(path) if isinstance(reasons, dict) else None
    if isinstance(reason, str) and reason.strip():
        return f": {reason.strip()}"
    return " (null): the probe could not determine it"


def resolve(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, InputRef):
        return inputs[value.name]
    return value


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Comparison(Expr):
    fact: str
    op: str
    operand: Any
    pattern: re.Pattern[str] | None = None

    def evaluate(self, facts: Any, inputs: dict[str, Any]) -> Outcome:
        observed = lookup(facts, self.fact)
        expected = resolve(self.operand, inputs)
        label = _fact_label(self.fact)
        if self.op == "exists":
            present = observed is not _MISSING and observed is not None
            held = present == bool(expected)
            what = "is present" if present else "is missing"
            return Outcome(Truth.TRUE if held else Truth.FALSE, [f"{label} {what} (expected exists {show(expected)})"])
        if observed is _MISSING:
            return Outcome(Truth.UNKNOWN, [f"fact {label} is missing from the probe's facts"])
        if observed is None:
            return Outcome(Truth.UNKNOWN, [f"fact {label} is unknown{_why_unknown(facts, self.fact)}"])
        verdict = self._holds(observed, expected)
        if verdict is None:
            return Outcome(
                Truth.UNKNOWN,
                [f"cannot apply {self.op} to {label} = {show(observed)} and {show(expected)}: incompatible types"],
            )
        symbol = _SYMBOLS.get(self.op, self.op)
        detail = f"{label} = {show(observed)} (expected {symbol} {show(expected)})"
        return Outcome(Truth.TRUE if verdict else Truth.FALSE, [detail])

    def _holds(self, observed: Any, expected: Any) -> bool | None:
        op = self.op
        if op in ("eq", "ne"):
            # 1 == True in Python; a boolean fact never equals a number here.
            equal = observed == expected and isinstance(observed, bool) == isinstance(expected, bool)
            return equal if op == "eq" else not equal
        if op in ORDERING:
            comparable = (_numeric(observed) and _numeric(expected)) or (
                isinstance(observed, str) and isinstance(expected, str)
            )
            if not comparable:
                return None
            if op == "lt":
                return bool(observed < expected)
            if op == "lte":
                return bool(observed <= expected)
            if op == "gt":
                return bool(observed > expected)
            return bool(observed >= expected)
        if op == "in":
            if not isinstance(expected, list):
                return None
            return observed in expected
        if op == "contains":
            if isinstance(observed, list):
                return expected in observed
            if isinstance(observed, str) and isinstance(expected, str):
                return expected in observed
            return None
        if op == "matches":
            if not isinstance(observed, str):
                return None
            pattern = self.pattern or re.compile(str(expected))
            try:
                return pattern.search(observed) is not None
            except RegexTooSlow as exc:  # the check's budget ran out here (checks.policy.evaluate)
                over = f"{_fact_label(self.fact)} ({len(observed):,} characters)"
                raise RegexTooSlow(exc.seconds, too_slow_reason(pattern.pattern, over, exc)) from None
        raise AssertionError(op)


def _item_label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("name", "id", "mount", "path", "device", "user", "userPrincipalName"):
            if isinstance(item.get(key), str | int):
                return f"[{index}] {item[key]}"
    elif isinstance(item, str | int | float):
        return f"[{index}] {item}"
    return f"[{index}]"


def _list_fact(facts: Any, path: str) -> list[Any] | Outcome:
    """The list at `path`, or the unknown outcome saying why there is none."""
    items = lookup(facts, path)
    if items is _MISSING or items is None:
        return Outcome(Truth.UNKNOWN, [f"fact {_fact_label(path)} is missing or unknown"])
    if not isinstance(items, list):
        return Outcome(Truth.UNKNOWN, [f"fact {_fact_label(path)} is not a list"])
    return items


@dataclass
class ItemQuantifier(Expr):
    fact: str
    kind: str  # every_item | any_item
    inner: Expr

    def evaluate(self, facts: Any, inputs: dict[str, Any]) -> Outcome:
        label = _fact_label(self.fact)
        items = _list_fact(facts, self.fact)
        if isinstance(items, Outcome):
            return items
        false_details: list[str] = []
        unknown_details: list[str] = []
        any_true = False
        for index, item in enumerate(items):
            outcome = self.inner.evaluate(item, inputs)
            prefix = f"{label}{_item_label(item, index)}: "
            if outcome.truth is Truth.TRUE:
                any_true = True
            elif outcome.truth is Truth.FALSE:
                false_details.append(prefix + "; ".join(outcome.details))
            else:
                unknown_details.append(prefix + "; ".join(outcome.details))
        if self.kind == "every_item":
            if false_details:
                return Outcome(Truth.FALSE, false_details)
            if unknown_details:
                return Outcome(Truth.UNKNOWN, unknown_details)
            return Outcome(Truth.TRUE)
        if any_true:
            return Outcome(Truth.TRUE)
        if unknown_details:
            return Outcome(Truth.UNKNOWN, unknown_details)
        if not items:
            return Outcome(Truth.FALSE, [f"{label} is empty (expected at least one matching item)"])
        return Outcome(Truth.FALSE, [f"no item of {label} matched: " + " | ".join(false_details)])


@dataclass
class Count(Expr):
    fact: str
    where: Expr | None
    op: str
    operand: Any

    def evaluate(self, facts: Any, inputs: dict[str, Any]) -> Outcome:
        label = _fact_label(self.fact)
        items = _list_fact(facts, self.fact)
        if isinstance(items, Outcome):
            return items
        matched: list[str] = []
        unknown: list[str] = []
        for index, item in enumerate(items):
            if self.where is None:
                matched.append(_item_label(item, index))
                continue
            outcome = self.where.evaluate(item, inputs)
            if outcome.truth is Truth.TRUE:
                matched.append(_item_label(item, index))
            elif outcome.truth is Truth.UNKNOWN:
                unknown.append(f"{label}{_item_label(item, index)}: " + "; ".join(outcome.details))
        if unknown:
            return Outcome(Truth.UNKNOWN, unknown)
        count = len(matched)
        expected = resolve(self.operand, inputs)
        held = Comparison("count", self.op, expected).evaluate({"count": count}, inputs)
        shown = ", ".join(matched[:10]) + (f" and {count - 10} more" if count > 10 else "")
        detail = f"count of {label}{' matching' if self.where else ''} = {count}"
        detail += f" (expected {_SYMBOLS.get(self.op, self.op)} {show(expected)})"
        if count and self.where is not None:
            detail += f": {shown}"
        return Outcome(held.truth, [detail])


def substitute_inputs(data: Any, inputs: dict[str, Any]) -> Any:
    """The expectation as written, with {input: NAME} replaced by the value in force."""
    if isinstance(data, dict):
        if set(data) == {"input"} and data["input"] in inputs:
            return inputs[data["input"]]
        return {key: substitute_inputs(value, inputs) for key, value in data.items()}
    if isinstance(data, list):
        return [substitute_inputs(item, inputs) for item in data]
    return data
