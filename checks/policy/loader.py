"""Loading policy files: every problem reported as `file:line: message`, nothing half-loaded.

Validation runs in two passes. The JSON Schema (generated from the registry) catches structure: unknown
keys, missing fields, wrong types, unknown probes and bad probe parameters (said in words by
`checks/policy/errors.py`). The semantic pass (`checks/policy/builder.py`) then checks what a schema
cannot: expectations against the probe's declared facts, duplicate ids, input references, platforms a
probe cannot run on, and the tests section. Waiver files are `checks/policy/waiverfile.py`'s;
`load_files` takes files of either kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from checks.policy import schema as schema_mod
from checks.policy.builder import PolicyBuilder
from checks.policy.documents import Context, parse_document, read_document
from checks.policy.errors import Issue, PathT, PolicyError, render_path, schema_problems
from checks.policy.expr_parser import Problem
from checks.policy.model import Policy, Waiver
from checks.policy.waiverfile import check_waivers_against, load_waivers


def load_policy_file(path: str | Path) -> Policy:
    source, document = read_document(path)
    return _load_policy(document.data, Context(source, document))


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    document = parse_document(text, source)
    return _load_policy(document.data, Context(source, document))


def load_policy_document(data: Any, source: str = "<policy>") -> Policy:
    """A policy from already-parsed data (a signed bundle from the collector)."""
    return _load_policy(data, Context(source, None))


def _load_policy(data: Any, ctx: Context) -> Policy:
    if not isinstance(data, dict):
        raise PolicyError([Issue(ctx.source, 1, "a policy file is a mapping with id, version, title and checks")])
    # Before the schema, which accepts .inf wherever it accepts a number: the policy's hash and the bundle
    # sent to agents are canonical JSON, which has no form for an infinite number or NaN.
    non_finite = _non_finite_problems(data, ())
    if non_finite:
        raise PolicyError(ctx.issues(non_finite))
    substituted = _with_input_defaults(data)
    # Built here, from the probes registered now, not cached: about 0.2 ms next to the file's parsing.
    validator = jsonschema.Draft202012Validator(schema_mod.policy_schema(for_validation=True))
    structural = schema_problems(validator, substituted)
    if structural:
        raise PolicyError(ctx.issues(structural))
    policy = PolicyBuilder(data, ctx).build()
    if ctx.problems:
        raise PolicyError(ctx.issues())
    return policy


def _non_finite_problems(node: Any, path: PathT) -> list[Problem]:
    """A problem for every infinite or NaN number (YAML `.inf`, `-.inf`, `.nan`) anywhere in the document."""
    if isinstance(node, float) and not math.isfinite(node):
        written = ".nan" if math.isnan(node) else (".inf" if node > 0 else "-.inf")
        return [Problem(path, f"{render_path(path)}: {written} is not allowed: use a finite number")]
    problems: list[Problem] = []
    if isinstance(node, dict):
        for key, value in node.items():
            problems += _non_finite_problems(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            problems += _non_finite_problems(value, (*path, index))
    return problems


def _with_input_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The document with {input: NAME} in probe params replaced by the input's default, for schema checks.

    Params are typed by the probe; an input reference is checked against the input's declared type by
    validating its default in its place.
    """
    inputs = data.get("inputs")
    if not isinstance(inputs, dict) or not isinstance(data.get("checks"), list):
        return data
    defaults = {name: decl.get("default") for name, decl in inputs.items() if isinstance(decl, dict)}

    def substitute(params: Any) -> Any:
        if not isinstance(params, dict):
            return params
        result = {}
        for key, value in params.items():
            if isinstance(value, dict) and set(value) == {"input"} and value["input"] in defaults:
                result[key] = defaults[value["input"]]
            else:
                result[key] = value
        return result

    checks = []
    for check in data["checks"]:
        if isinstance(check, dict):
            check = dict(check)
            probe = check.get("probe")
            if isinstance(probe, dict) and "params" in probe:
                check["probe"] = {**probe, "params": substitute(probe["params"])}
            applicable = check.get("applicable_if")
            if isinstance(applicable, dict) and isinstance(applicable.get("probe"), dict):
                probe = applicable["probe"]
                if "params" in probe:
                    check["applicable_if"] = {
                        **applicable,
                        "probe": {**probe, "params": substitute(probe["params"])},
                    }
        checks.append(check)
    return {**data, "checks": checks}


# --- files of either kind ------------------------------------------------------------------------------


@dataclass
class LoadedFiles:
    policies: list[Policy]
    waivers: list[Waiver]
    issues: list[Issue]


def load_files(paths: list[str]) -> LoadedFiles:
    """Policy and waiver files, told apart by their top-level key; every problem of every file collected."""
    loaded = LoadedFiles([], [], [])
    for path in paths:
        try:
            source, document = read_document(path)
        except PolicyError as exc:
            loaded.issues.extend(exc.issues)
            continue
        try:
            if isinstance(document.data, dict) and "waivers" in document.data:
                loaded.waivers.extend(load_waivers(document.data, Context(source, document)))
            else:
                loaded.policies.append(_load_policy(document.data, Context(source, document)))
        except PolicyError as exc:
            loaded.issues.extend(exc.issues)
    seen: dict[str, str] = {}
    for policy in loaded.policies:
        if policy.id in seen:
            loaded.issues.append(Issue(policy.source, 1, f"policy id {policy.id!r} is also used by {seen[policy.id]}"))
        seen[policy.id] = policy.source
    if loaded.policies:
        loaded.issues.extend(check_waivers_against(loaded.waivers, loaded.policies))
    return loaded


__all__ = [
    "Issue",  # raised by every loader, so importable beside them
    "LoadedFiles",
    "PolicyError",
    "load_files",
    "load_policy_document",
    "load_policy_file",
    "load_policy_text",
]
