"""Parsing the `expect` language: its YAML form into an `Expr`, with every problem reported at its path.

Checks what the schema cannot: that each fact exists in the probe's declared facts, and that a comparison's
operand has a type the fact can be compared with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checks.policy.expr import (
    COMBINATORS,
    COMPARISONS,
    ITEM_SELF,
    LIST_OPERATORS,
    ORDERING,
    Combination,
    Comparison,
    Count,
    Expr,
    InputRef,
    ItemQuantifier,
    show,
)
from checks.probes.registry import Field

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
            self.problem(path + (op,), f"count is compared with a whole number; got {show(operand)}")
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
                self.problem(path, f"{op} compares numbers or strings; got {show(raw)}")
                return None
            if fact_type in ("boolean", "array", "object"):
                self.problem(path, f"{op} cannot compare {fact} ({_a(fact_type)}) with {_a(value_type)}")
                return None
            if fact_type in ("integer", "number") and value_type == "string":
                self.problem(path, f"{fact} is a number; compare it with a number, not {show(raw)}")
                return None
        elif op == "in":
            if value_type not in ("array",):
                self.problem(path, f"in takes a list of values; got {show(raw)}")
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
                    f"{fact} is {_a(fact_type)}; comparing it with {show(raw)} ({value_type}) never holds",
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
