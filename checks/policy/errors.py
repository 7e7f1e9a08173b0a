"""What is wrong with a policy or waiver file, in words: `file:line: message`, never a schema's jargon.

`Issue` and `PolicyError` are what the loaders report. `schema_problems` turns the JSON Schema's
validation errors into sentences an author can act on (an unknown key with the nearest known one, a
missing field, a type said in words, a pattern said as the form it wants).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from checks.policy import schema as schema_mod
from checks.policy.expr_parser import Problem

PathT = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class PolicyError(Exception):
    """A policy or waiver file is invalid; `issues` holds every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


def render_path(path: PathT) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


def _describe_type(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected if t != "null")
    return _TYPE_NAMES.get(str(expected), str(expected))


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Descend through if/then and anyOf wrappers to the errors that say something specific."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        specific = [e for e in error.context if len(e.absolute_path) == deepest and deepest > len(error.absolute_path)]
        if specific:
            return [leaf for e in specific for leaf in _leaf_errors(e)]
    return [error]


def schema_problems(
    validator: jsonschema.Draft202012Validator, data: Any, where_of: Callable[[PathT], str] = render_path
) -> list[Problem]:
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        for leaf in _leaf_errors(error):
            problems.append(explain(leaf, where_of))
    return problems


# Patterns said in words: a regular expression is the schema's business, not the reader's.
_PATTERN_WORDS = {
    schema_mod.DATE_PATTERN: "is not a date; use YYYY-MM-DD",
    schema_mod.DURATION_PATTERN: "is not a duration; use a number and s, m, h or d, e.g. 6h",
}


def explain(error: jsonschema.ValidationError, where_of: Callable[[PathT], str] = render_path) -> Problem:
    path: PathT = tuple(error.absolute_path)
    where = where_of(path)
    kind = error.validator
    if kind == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        key = extra[0] if extra else "?"
        hint = difflib.get_close_matches(key, allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of: {', '.join(allowed)}"
        return Problem(path + (key,), f"{where}: unknown key {key!r}{suggestion}")
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return Problem(path, f"{where}: missing required field {missing!r}")
    if kind == "enum":
        options = [str(o) for o in error.validator_value]  # type: ignore[union-attr]
        hint = difflib.get_close_matches(str(error.instance), options, n=1)
        what = "probe" if path and path[-1] in ("name", "probe") else "value"
        if hint:
            return Problem(path, f"{where}: unknown {what} {error.instance!r}; did you mean {hint[0]!r}?")
        shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
        return Problem(path, f"{where}: unknown {what} {error.instance!r}; expected one of: {shown}")
    if kind == "type":
        expected = _describe_type(error.validator_value)
        message = f"{where}: expected {expected}, got {error.instance!r}"
        if path and path[-1] == "version" and isinstance(error.instance, int | float):
            message += ' (quote it: "' + str(error.instance) + '")'
        return Problem(path, message)
    if kind == "pattern":
        words = _PATTERN_WORDS.get(str(error.validator_value))
        if words is not None:
            return Problem(path, f"{where} {error.instance!r} {words}")
        return Problem(path, f"{where}: {error.instance!r} does not have the expected form ({error.validator_value})")
    if kind == "minItems":
        return Problem(path, f"{where}: must not be empty")
    if kind == "minLength" and error.validator_value == 1:
        return Problem(path, f"{where} is empty")
    if kind == "minProperties" and isinstance(error.schema, dict) and error.schema.get("properties"):
        names = sorted(error.schema["properties"])
        return Problem(path, f"{where} is empty; give at least one of {', '.join(names)}")
    return Problem(path, f"{where}: {error.message}")
