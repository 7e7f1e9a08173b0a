"""A probe's facts against its spec: each fact declared, of the declared type, in words naming probe and fact.

The spec's types are JSON Schema's (the facts travel as JSON), so an integral float is an integer and
true is not a number. `fact_problems` is the evaluator's strict mode (`checks/policy/evaluate.py`) and the
fact-contract tests' judge: `probe package returned fact 'version' as a list; its spec says string`.
"""

from __future__ import annotations

from typing import Any

from checks.probes.registry import Facts, Field, ProbeSpec


def fact_problems(spec: ProbeSpec, facts: Any, *, complete: bool = False, ignore: tuple[str, ...] = ()) -> list[str]:
    """Every way `facts` break the spec; with `complete`, a required fact that is absent is one too.

    `ignore` names facts that are not the probe's own (the evaluator's `_redacted` note).
    """
    if not isinstance(facts, dict):
        return [f"probe {spec.name} returned {_described(facts)} instead of its facts"]
    problems: list[str] = []
    for problem in _object_problems(spec.facts, facts, "", complete, ignore):
        problems.append(f"probe {spec.name} {problem}")
    return problems


def _object_problems(
    fields: tuple[Field, ...], values: Facts, prefix: str, complete: bool, ignore: tuple[str, ...] = ()
) -> list[str]:
    declared = {f.name: f for f in fields}
    problems: list[str] = []
    for name, value in values.items():
        if name in ignore:
            continue
        where = f"{prefix}{name}"
        field = declared.get(name)
        if field is None:
            problems.append(f"returned fact {where!r}, which its spec does not declare")
            continue
        problems.extend(_value_problems(field, value, where))
    if complete:
        for field in fields:
            if field.required and field.default is None and field.name not in values:
                problems.append(f"did not return fact {prefix + field.name!r}, which its spec requires")
    return problems


def _value_problems(field: Field, value: Any, where: str) -> list[str]:
    if value is None:
        return [] if field.nullable else [f"returned fact {where!r} as null; its spec says {_declared(field)}"]
    if not has_type(value, field.type):
        return [f"returned fact {where!r} as {_described(value)}; its spec says {_declared(field)}"]
    if field.enum is not None and value not in field.enum:
        options = ", ".join(map(str, field.enum))
        return [f"returned fact {where!r} as {value!r}; its spec says one of {options}"]
    if field.type == "array":
        problems: list[str] = []
        for index, item in enumerate(value):
            at = f"{where}[{index}]"
            if field.fields:
                if not isinstance(item, dict):
                    problems.append(f"returned fact {at!r} as {_described(item)}; its spec says a mapping")
                else:
                    problems.extend(_object_problems(field.fields, item, f"{at}.", True))
            elif field.items is not None and not has_type(item, field.items):
                problems.append(f"returned fact {at!r} as {_described(item)}; its spec says {field.items}")
        return problems
    if field.type == "object" and field.fields:
        # The schema of an object with declared properties requires them, whatever the caller asked.
        return _object_problems(field.fields, value, f"{where}.", True)
    return []


def has_type(value: Any, type_name: str) -> bool:
    """Whether a value is of a JSON Schema type: a bool is only a boolean; 2.0 is an integer, as in JSON."""
    if isinstance(value, bool):
        return type_name == "boolean"
    if type_name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if type_name == "number":
        return isinstance(value, int | float)
    kinds: dict[str, type] = {"boolean": bool, "string": str, "array": list, "object": dict}
    return isinstance(value, kinds[type_name])


def _declared(field: Field) -> str:
    said = field.type
    if field.type == "array" and field.items:
        said = f"array of {field.items}"
    return f"{said} or null" if field.nullable else said


def _described(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
