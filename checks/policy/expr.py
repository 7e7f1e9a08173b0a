"""The `expect` language: structured comparisons on a probe's facts, combined with all / any / none.

Evaluation is three-valued (Kleene): a comparison whose fact is missing or null is *unknown*, and a
combination is unknown only when its answer depends on an unknown part. `any` of a true comparison and an
unknown one is true; `all` of a false comparison and an unknown one is false. An unknown outcome becomes an
`error` result naming the missing fact: never a pass or a fail.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from checks.probes.registry import UNKNOWN_BECAUSE, Field

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


def _show(value: Any) -> str:
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
            return Outcome(Truth.TRUE if held else Truth.FALSE, [f"{label} {what} (expected exists {_show(expected)})"])
        if observed is _MISSING:
            return Outcome(Truth.UNKNOWN, [f"fact {label} is missing from the probe's facts"])
        if observed is None:
            return Outcome(Truth.UNKNOWN, [f"fact {label} is unknown{_why_unknown(facts, self.fact)}"])
        verdict = self._holds(observed, expected)
        if verdict is None:
            return Outcome(
                Truth.UNKNOWN,
                [f"cannot apply {self.op} to {label} = {_show(observed)} and {_show(expected)}: incompatible types"],
            )
        symbol = _SYMBOLS.get(self.op, self.op)
        detail = f"{label} = {_show(observed)} (expected {symbol} {_show(expected)})"
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
            return pattern.search(observed) is not None
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
        detail += f" (expected {_SYMBOLS.get(self.op, self.op)} {_show(expected)})"
        if count and self.where is not None:
            detail += f": {shown}"
        return Outcome(held.truth, [detail])


# --- parsing -------------------------------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass
class Problem:
    path: Path
    message: str


@dataclass
class FactScope:
    """The facts visible where an expression is written: a probe's facts, or a list's item fields.

    `fields` None means the shape is not declared (no type checks); `item_type` is set inside an
    every_item / any_item over a list of scalars, where `.` names the item.
    """

    fields: dict[str, Field] | None
    item_type: str | None = None


def scope_of(fields: Iterable[Field]) -> FactScope:
    return FactScope({f.name: f for f in fields})


def _resolve_field(scope: FactScope, path: str) -> Field | None | str:
    """The declared field at a path; None when undeclared shape; an error message when unknown."""
    if path == ITEM_SELF:
        if scope.item_type is None:
            return "`.` (the item itself) can only be used inside every_item / any_item over a list of values"
        if scope.item_type == "any":
            return None
        return Field(".", scope.item_type, "the item")
    if scope.fields is None:
        return None
    parts = path.split(".")
    fields: dict[str, Field] | None = scope.fields
    found: Field | None = None
    for index, part in enumerate(parts):
        if fields is None:
            return None
        if part not in fields:
            where = f" of {'.'.join(parts[:index])}" if index else ""
            known = ", ".join(sorted(fields)) or "none"
            return f"unknown fact {path!r}: no field {part!r}{where} (known: {known})"
        found = fields[part]
        if index < len(parts) - 1:
            if found.type != "object":
                return f"{'.'.join(parts[: index + 1])} is {_a(found.type)}; it has no field {parts[index + 1]!r}"
            fields = {f.name: f for f in found.fields} if found.fields else None
    return found


class ExprParser:
    """Turns the YAML form of an expectation into an `Expr`, reporting every problem with its path."""

    def __init__(self, inputs: dict[str, str], problems: list[Problem]) -> None:
        self.inputs = inputs  # declared input name -> type
        self.problems = problems

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message))

    def parse(self, data: Any, path: Path, scope: FactScope) -> Expr | None:
        if not isinstance(data, dict):
            self.problem(path, "an expectation must be a mapping (a comparison, or all/any/none of them)")
            return None
        combinators = [k for k in COMBINATORS if k in data]
        if combinators:
            extra = sorted(k for k in data if k not in COMBINATORS)
            if len(combinators) > 1 or extra:
                self.problem(path, f"all / any / none stand alone in their mapping; found {sorted(data)}")
                return None
            kind = combinators[0]
            parts = data[kind]
            if not isinstance(parts, list) or not parts:
                self.problem(path + (kind,), f"{kind} takes a non-empty list of expectations")
                return None
            parsed = [self.parse(part, path + (kind, i), scope) for i, part in enumerate(parts)]
            if any(p is None for p in parsed):
                return None
            return Combination(kind, [p for p in parsed if p is not None])
        if "fact" not in data:
            unknown = sorted(k for k in data if k not in COMPARISONS + LIST_OPERATORS)
            if unknown:
                self.problem(
                    path,
                    f"unknown operator {unknown[0]!r}; expected all, any, none, or fact with one of "
                    + ", ".join(COMPARISONS + LIST_OPERATORS),
                )
            else:
                self.problem(path, "missing `fact`: a comparison names the fact it tests")
            return None
        fact = data["fact"]
        if not isinstance(fact, str) or not fact:
            self.problem(path + ("fact",), "fact must be a non-empty string (a fact name or dotted path)")
            return None
        operators = [k for k in data if k != "fact"]
        unknown = [k for k in operators if k not in COMPARISONS + LIST_OPERATORS]
        if unknown:
            self.problem(
                path + (unknown[0],),
                f"unknown operator {unknown[0]!r}; expected one of " + ", ".join(COMPARISONS + LIST_OPERATORS),
            )
            return None
        if len(operators) != 1:
            what = "no operator" if not operators else f"{len(operators)} operators ({', '.join(operators)})"
            self.problem(path, f"a comparison takes exactly one operator; found {what}")
            return None
        op = operators[0]
        declared = _resolve_field(scope, fact)
        if isinstance(declared, str):
            self.problem(path + ("fact",), declared)
            return None
        if op in ("every_item", "any_item"):
            return self._parse_quantifier(data, path, op, fact, declared)
        if op == "count":
            return self._parse_count(data["count"], path + ("count",), fact, declared)
        return self._parse_comparison(fact, op, data[op], path + (op,), declared)

    def _list_item_scope(self, path: Path, fact: str, declared: Field | None) -> FactScope | None:
        if declared is None:
            return FactScope(None, item_type="any")
        if declared.type != "array":
            self.problem(path + ("fact",), f"{fact} is {_a(declared.type)}, not a list")
            return None
        if declared.fields:
            return scope_of(declared.fields)
        return FactScope({}, item_type=declared.items or "any")

    def _parse_quantifier(
        self, data: dict[str, Any], path: Path, op: str, fact: str, declared: Field | None
    ) -> Expr | None:
        item_scope = self._list_item_scope(path, fact, declared)
        if item_scope is None:
            return None
        inner = self.parse(data[op], path + (op,), item_scope)
        return None if inner is None else ItemQuantifier(fact, op, inner)

    def _parse_count(self, data: Any, path: Path, fact: str, declared: Field | None) -> Expr | None:
        item_scope = self._list_item_scope(path[:-1], fact, declared)
        if item_scope is None:
            return None
        if not isinstance(data, dict):
            self.problem(path, "count takes a mapping: optional `where` and one of eq, ne, lt, lte, gt, gte")
            return None
        ops = [k for k in data if k != "where"]
        bad = [k for k in ops if k not in ("eq", "ne", "lt", "lte", "gt", "gte")]
        if bad or len(ops) != 1:
            self.problem(path, "count takes exactly one of eq, ne, lt, lte, gt, gte (and an optional `where`)")
            return None
        op = ops[0]
        where = None
        if "where" in data:
            where = self.parse(data["where"], path + ("where",), item_scope)
            if where is None:
                return None
        operand = self._operand(data[op], path + (op,), "integer")
        if operand is _INVALID:
            return None
        if not isinstance(operand, InputRef) and not (isinstance(operand, int) and not isinstance(operand, bool)):
            self.problem(path + (op,), f"count is compared with a whole number; got {_show(operand)}")
            return None
        return Count(fact, where, op, operand)

    def _operand(self, value: Any, path: Path, expected_type: str | None) -> Any:
        if isinstance(value, dict) and set(value) == {"input"}:
            name = value["input"]
            if name not in self.inputs:
                known = ", ".join(sorted(self.inputs)) or "none declared"
                self.problem(path, f"unknown input {name!r} (inputs: {known})")
                return _INVALID
            return InputRef(str(name))
        if isinstance(value, dict):
            self.problem(path, "an operand is a value or {input: NAME}")
            return _INVALID
        return value

    def _parse_comparison(self, fact: str, op: str, raw: Any, path: Path, declared: Field | None) -> Expr | None:
        operand = self._operand(raw, path, None)
        if operand is _INVALID:
            return None
        fact_type = declared.type if declared is not None else None
        value_type = self.inputs.get(operand.name) if isinstance(operand, InputRef) else _json_type(operand)
        pattern = None
        if op == "exists":
            if not isinstance(operand, bool):
                self.problem(path, "exists takes true or false")
                return None
        elif op in ORDERING:
            if value_type not in ("integer", "number", "string"):
                self.problem(path, f"{op} compares numbers or strings; got {_show(raw)}")
                return None
            if fact_type in ("boolean", "array", "object"):
                self.problem(path, f"{op} cannot compare {fact} ({_a(fact_type)}) with {_a(value_type)}")
                return None
            if fact_type in ("integer", "number") and value_type == "string":
                self.problem(path, f"{fact} is a number; compare it with a number, not {_show(raw)}")
                return None
        elif op == "in":
            if value_type not in ("array",):
                self.problem(path, f"in takes a list of values; got {_show(raw)}")
                return None
        elif op == "contains":
            if fact_type not in (None, "array", "string", "any"):
                self.problem(path, f"contains applies to a list or a string; {fact} is {_a(fact_type)}")
                return None
        elif op == "matches":
            if not isinstance(operand, str):
                self.problem(path, "matches takes a regular expression string")
                return None
            if fact_type not in (None, "string", "any"):
                self.problem(path, f"matches applies to strings; {fact} is {_a(fact_type)}")
                return None
            try:
                pattern = re.compile(operand)
            except re.error as exc:
                self.problem(path, f"invalid regular expression {operand!r}: {exc}")
                return None
        elif op in ("eq", "ne"):
            if fact_type and fact_type != "any" and value_type and not _compatible(fact_type, value_type):
                self.problem(
                    path,
                    f"{fact} is {_a(fact_type)}; comparing it with {_show(raw)} ({value_type}) never holds",
                )
                return None
        return Comparison(fact, op, operand, pattern)


_INVALID = object()


def _a(type_name: str | None) -> str:
    """`an integer`, `a string`: the type with its article, for messages."""
    name = str(type_name)
    return ("an " if name[:1] in "aeiou" else "a ") + name


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _compatible(fact_type: str, value_type: str) -> bool:
    if value_type == "null":
        return True
    if fact_type == value_type:
        return True
    return fact_type in ("integer", "number") and value_type in ("integer", "number")


def substitute_inputs(data: Any, inputs: dict[str, Any]) -> Any:
    """The expectation as written, with {input: NAME} replaced by the value in force."""
    if isinstance(data, dict):
        if set(data) == {"input"} and data["input"] in inputs:
            return inputs[data["input"]]
        return {key: substitute_inputs(value, inputs) for key, value in data.items()}
    if isinstance(data, list):
        return [substitute_inputs(item, inputs) for item in data]
    return data
