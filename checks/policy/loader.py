"""Loading policy and waiver files: every problem reported as `file:line: message`, nothing half-loaded.

Validation runs in two passes. The JSON Schema (generated from the registry) catches structure: unknown
keys, missing fields, wrong types, unknown probes and bad probe parameters. The semantic pass then checks
what a schema cannot: expectations against the probe's declared facts, duplicate ids, input references,
platforms a probe cannot run on, waiver rules, and the tests section.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from checks.durations import parse_duration
from checks.policy import schema as schema_mod
from checks.policy.expr import ExprParser, FactScope, Problem, scope_of
from checks.policy.model import (
    DEFAULT_INTERVAL_S,
    Applicability,
    Check,
    InputDecl,
    Override,
    Policy,
    PolicyTest,
    ProbeRef,
    Waiver,
    WaiverScope,
    policy_hash,
)
from checks.policy.yamlsource import YamlDocument, YamlSyntaxError, parse_yaml
from checks.probes import registry
from checks.results import Severity, Status

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


def _schema_problems(
    validator: jsonschema.Draft202012Validator, data: Any, where_of: Callable[[PathT], str] = render_path
) -> list[Problem]:
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        for leaf in _leaf_errors(error):
            problems.append(_explain(leaf, where_of))
    return problems


# Patterns said in words: a regular expression is the schema's business, not the reader's.
_PATTERN_WORDS = {
    schema_mod.DATE_PATTERN: "is not a date; use YYYY-MM-DD",
    schema_mod.DURATION_PATTERN: "is not a duration; use a number and s, m, h or d, e.g. 6h",
}


def _explain(error: jsonschema.ValidationError, where_of: Callable[[PathT], str] = render_path) -> Problem:
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


class _Context:
    def __init__(self, source: str, document: YamlDocument | None) -> None:
        self.source = source
        self.document = document
        self.problems: list[Problem] = []

    def line(self, path: PathT) -> int:
        return self.document.line_of(path) if self.document else 0

    def issues(self, extra: list[Problem] | None = None) -> list[Issue]:
        problems = list(extra or []) + self.problems
        issues = {Issue(self.source, self.line(p.path), p.message) for p in problems}
        return sorted(issues, key=lambda issue: (issue.line, issue.message))


def _read(path: str | Path) -> tuple[str, YamlDocument]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyError([Issue(source, 0, "no such file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Issue(source, 0, f"cannot read: {exc}")]) from exc
    return source, _parse(text, source)


def _parse(text: str, source: str) -> YamlDocument:
    try:
        document = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise PolicyError([Issue(source, exc.line, exc.message)]) from exc
    if document.problems:
        raise PolicyError([Issue(source, p.line, p.message) for p in document.problems])
    return document


def load_policy_file(path: str | Path) -> Policy:
    source, document = _read(path)
    return _load_policy(document.data, _Context(source, document))


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    document = _parse(text, source)
    return _load_policy(document.data, _Context(source, document))


def load_policy_document(data: Any, source: str = "<policy>") -> Policy:
    """A policy from already-parsed data (a signed bundle from the collector)."""
    return _load_policy(data, _Context(source, None))


def _load_policy(data: Any, ctx: _Context) -> Policy:
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
    schema_problems = _schema_problems(validator, substituted)
    if schema_problems:
        raise PolicyError(ctx.issues(schema_problems))
    policy = _PolicyBuilder(data, ctx).build()
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


_INPUT_PY_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
}


def _value_has_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _INPUT_PY_TYPES[type_name])


class _PolicyBuilder:
    def __init__(self, data: dict[str, Any], ctx: _Context) -> None:
        self.data = data
        self.ctx = ctx

    def problem(self, path: PathT, message: str) -> None:
        self.ctx.problems.append(Problem(path, message))

    def build(self) -> Policy:
        data = self.data
        inputs = self._inputs()
        overrides = self._overrides(inputs)
        parser = ExprParser({name: decl.type for name, decl in inputs.items()}, self.ctx.problems)
        default_interval = DEFAULT_INTERVAL_S
        if "interval" in data.get("defaults", {}):
            default_interval = parse_duration(data["defaults"]["interval"])
        checks: list[Check] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(data["checks"]):
            path: PathT = ("checks", index)
            if raw["id"] in seen:
                self.problem(
                    path + ("id",),
                    f"duplicate check id {raw['id']!r} (first defined at line {seen[raw['id']]})",
                )
                continue
            seen[raw["id"]] = self.ctx.line(path + ("id",))
            check = self._check(raw, path, parser, inputs, default_interval)
            if check is not None:
                checks.append(check)
        tests = self._tests(checks)
        return Policy(
            id=data["id"],
            version=data["version"],
            title=data["title"],
            description=data.get("description", ""),
            scoring=data.get("scoring", "simple"),
            checks=checks,
            inputs=inputs,
            overrides=overrides,
            tests=tests,
            document=data,
            sha256=policy_hash(data),
            source=self.ctx.source,
        )

    def _inputs(self) -> dict[str, InputDecl]:
        inputs: dict[str, InputDecl] = {}
        for name, decl in self.data.get("inputs", {}).items():
            if not _value_has_type(decl["default"], decl["type"]):
                self.problem(
                    ("inputs", name, "default"),
                    f"inputs.{name}.default: {decl['default']!r} is not of the declared type {decl['type']}",
                )
                continue
            inputs[name] = InputDecl(name, decl["type"], decl["default"], decl["description"])
        return inputs

    def _overrides(self, inputs: dict[str, InputDecl]) -> list[Override]:
        overrides: list[Override] = []
        for index, raw in enumerate(self.data.get("overrides", [])):
            values: dict[str, Any] = {}
            for name, value in raw["inputs"].items():
                path: PathT = ("overrides", index, "inputs", name)
                if name not in inputs:
                    known = ", ".join(sorted(inputs)) or "none declared"
                    self.problem(path, f"override of unknown input {name!r} (inputs: {known})")
                elif not _value_has_type(value, inputs[name].type):
                    self.problem(path, f"override of {name}: {value!r} is not of the declared type {inputs[name].type}")
                else:
                    values[name] = value
            overrides.append(Override(tuple(raw["groups"]), values))
        return overrides

    def _probe_ref(self, raw: Any, path: PathT, inputs: dict[str, InputDecl]) -> ProbeRef | None:
        if isinstance(raw, str):
            ref = ProbeRef(raw, {})
        else:
            ref = ProbeRef(raw["name"], dict(raw.get("params", {})))
        spec = registry.get(ref.name)
        assert spec is not None  # the schema checked the name
        for key, value in ref.params.items():
            if isinstance(value, dict) and set(value) == {"input"} and value["input"] not in inputs:
                known = ", ".join(sorted(inputs)) or "none declared"
                self.problem(path + ("params", key), f"unknown input {value['input']!r} (inputs: {known})")
                return None
        missing = [p.name for p in spec.params if p.required and p.default is None and p.name not in ref.params]
        if missing:
            self.problem(path, f"probe {ref.name} needs parameter {missing[0]!r}")
            return None
        return ref

    def _param_problems(
        self, ref: ProbeRef, path: PathT, platforms: tuple[str, ...] | None, inputs: dict[str, InputDecl]
    ) -> None:
        """Each parameter against its grammar on every platform the check runs on, with the input's default
        and with every override's value in place of an input reference (the schema saw only the default)."""
        spec = registry.get(ref.name)
        assert spec is not None
        runs_on = [p for p in (platforms or spec.platforms) if p in spec.collectors]
        references = {
            key: value["input"]
            for key, value in ref.params.items()
            if isinstance(value, dict) and set(value) == {"input"} and value["input"] in inputs
        }
        base = {
            key: inputs[references[key]].default if key in references else value for key, value in ref.params.items()
        }
        variants: list[tuple[dict[str, Any], dict[str, PathT]]] = [
            (base, {key: path + ("params", key) for key in ref.params})
        ]
        for index, override in enumerate(self.data.get("overrides", [])):
            given = override.get("inputs", {}) if isinstance(override, dict) else {}
            changed = {key: name for key, name in references.items() if name in given}
            if changed:
                params = {**base, **{key: given[name] for key, name in changed.items()}}
                where: dict[str, PathT] = {key: ("overrides", index, "inputs", name) for key, name in changed.items()}
                variants.append((params, where))
        hint = (
            ""
            if platforms
            else f" (the check runs wherever its probe does: {', '.join(runs_on)}; "
            "say which platforms it is for with `platforms:`)"
        )
        for params, where in variants:
            full = spec.params_with_defaults(params)
            found = registry.param_problems(spec, full, None)
            if not found:
                found = [
                    (name, message + hint) for p in runs_on for name, message in registry.param_problems(spec, full, p)
                ]
            for name, message in found:
                if name in where:  # not a probe's default, nor a missing parameter (reported elsewhere)
                    self.problem(where[name], f"{render_path(where[name])}: {message}")

    def _check(
        self,
        raw: dict[str, Any],
        path: PathT,
        parser: ExprParser,
        inputs: dict[str, InputDecl],
        default_interval: int,
    ) -> Check | None:
        before = len(self.ctx.problems)
        probe = self._probe_ref(raw["probe"], path + ("probe",), inputs)
        if probe is None:
            return None
        spec = registry.get(probe.name)
        assert spec is not None
        platforms = tuple(raw["platforms"]) if "platforms" in raw else None
        if platforms is not None:
            unsupported = [p for p in platforms if p not in spec.platforms]
            if unsupported:
                self.problem(
                    path + ("platforms",),
                    f"probe {probe.name} has no collector for {', '.join(unsupported)} "
                    f"(it runs on {', '.join(spec.platforms) or 'nothing'})",
                )
        self._param_problems(probe, path + ("probe",), platforms, inputs)
        expect = parser.parse(raw["expect"], path + ("expect",), scope_of(spec.facts))
        applicable = None
        if "applicable_if" in raw:
            applicable = self._applicability(raw["applicable_if"], path + ("applicable_if",), probe, parser, inputs)
            if applicable is not None and "probe" in raw["applicable_if"]:
                self._param_problems(applicable.probe, path + ("applicable_if", "probe"), platforms, inputs)
        if expect is None or len(self.ctx.problems) != before:
            return None
        return Check(
            id=raw["id"],
            title=raw["title"],
            description=raw["description"],
            rationale=raw["rationale"],
            remediation=raw["remediation"],
            severity=Severity(raw["severity"]),
            probe=probe,
            expect=expect,
            raw_expect=raw["expect"],
            weight=float(raw["weight"]) if "weight" in raw else None,
            platforms=platforms,
            interval_s=parse_duration(raw["interval"]) if "interval" in raw else default_interval,
            applicable_if=applicable,
            frameworks={k: list(v) for k, v in raw.get("frameworks", {}).items()},
            line=self.ctx.line(path),
        )

    def _applicability(
        self,
        raw: dict[str, Any],
        path: PathT,
        check_probe: ProbeRef,
        parser: ExprParser,
        inputs: dict[str, InputDecl],
    ) -> Applicability | None:
        probe = check_probe
        if "probe" in raw:
            resolved = self._probe_ref(raw["probe"], path + ("probe",), inputs)
            if resolved is None:
                return None
            probe = resolved
        spec = registry.get(probe.name)
        assert spec is not None
        expect = parser.parse(raw["expect"], path + ("expect",), scope_of(spec.facts))
        if expect is None:
            return None
        return Applicability(probe, expect, raw["expect"], raw["reason"])

    def _tests(self, checks: list[Check]) -> list[PolicyTest]:
        by_id = {check.id: check for check in checks}
        declared_ids = {raw["id"] for raw in self.data["checks"]}
        tests: list[PolicyTest] = []
        for index, raw in enumerate(self.data.get("tests", [])):
            path: PathT = ("tests", index)
            check = by_id.get(raw["check"])
            if check is None:
                if raw["check"] not in declared_ids:
                    self.problem(path + ("check",), f"test {raw['name']!r} names unknown check {raw['check']!r}")
                continue
            if ("facts" in raw) == ("probe_error" in raw):
                self.problem(path, f"test {raw['name']!r} gives exactly one of `facts` or `probe_error`")
                continue
            spec = registry.get(check.probe.name)
            assert spec is not None
            if "facts" in raw:
                self._check_facts(raw["facts"], spec.facts, path + ("facts",), check.probe.name)
            if "applicable_facts" in raw and check.applicable_if is not None:
                app_spec = registry.get(check.applicable_if.probe.name)
                assert app_spec is not None
                self._check_facts(raw["applicable_facts"], app_spec.facts, path + ("applicable_facts",), app_spec.name)
            tests.append(
                PolicyTest(
                    name=raw["name"],
                    check=raw["check"],
                    status=Status(raw["status"]),
                    facts=raw.get("facts"),
                    probe_error=raw.get("probe_error"),
                    applicable_facts=raw.get("applicable_facts"),
                    applicable_error=raw.get("applicable_error"),
                    groups=tuple(raw.get("groups", [])),
                    platform=raw.get("platform"),
                    reason_contains=raw.get("reason_contains"),
                    line=self.ctx.line(path),
                )
            )
        return tests

    def _check_facts(self, facts: dict[str, Any], fields: tuple[registry.Field, ...], path: PathT, probe: str) -> None:
        """Recorded facts must be facts the probe can return, of the declared types (all are optional)."""
        schema = registry.object_schema(fields)
        schema["required"] = []
        for problem in _schema_problems(jsonschema.Draft202012Validator(schema), facts):
            self.problem(path + problem.path, f"facts for probe {probe}: {problem.message}")


# --- waivers -------------------------------------------------------------------------------------------


def load_waiver_file(path: str | Path) -> list[Waiver]:
    source, document = _read(path)
    return _load_waivers(document.data, _Context(source, document))


def load_waiver_document(data: Any, source: str = "<waivers>") -> list[Waiver]:
    return _load_waivers(data, _Context(source, None))


def _waiver_where(data: Any) -> Callable[[PathT], str]:
    """Where in a waiver file, as its author knows it: `waiver W-1: justification`, not `waivers[0].justification`."""

    def where(path: PathT) -> str:
        listed = data.get("waivers") if isinstance(data, dict) else None
        if len(path) < 2 or path[0] != "waivers" or not isinstance(path[1], int) or not isinstance(listed, list):
            return render_path(path)
        raw = listed[path[1]] if path[1] < len(listed) else None
        waiver_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"waiver {waiver_id}" if isinstance(waiver_id, str) and waiver_id.strip() else f"waiver {path[1] + 1}"
        rest = path[2:]
        return f"{label}: {render_path(rest)}" if rest else label

    return where


def _load_waivers(data: Any, ctx: _Context) -> list[Waiver]:
    if not isinstance(data, dict):
        raise PolicyError([Issue(ctx.source, 1, "a waiver file is a mapping with a `waivers:` list")])
    validator = jsonschema.Draft202012Validator(schema_mod.waiver_schema())
    schema_problems = _schema_problems(validator, data, _waiver_where(data))
    if schema_problems:
        raise PolicyError(ctx.issues(schema_problems))
    waivers: list[Waiver] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["waivers"]):
        path: PathT = ("waivers", index)
        if raw["id"] in seen:
            ctx.problems.append(Problem(path + ("id",), f"duplicate waiver id {raw['id']!r}"))
            continue
        seen.add(raw["id"])
        if raw["requested_by"].strip().lower() == raw["approved_by"].strip().lower():
            ctx.problems.append(
                Problem(path + ("approved_by",), f"waiver {raw['id']}: the approver must not be the requester")
            )
            continue
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError:
            ctx.problems.append(
                Problem(
                    path + ("expires",), f"waiver {raw['id']}: expires {raw['expires']!r} is not a date; use YYYY-MM-DD"
                )
            )
            continue
        scope = raw["scope"]
        waivers.append(
            Waiver(
                id=raw["id"],
                check=raw["check"],
                policy=raw.get("policy"),
                scope=WaiverScope(
                    hosts=tuple(scope.get("hosts", [])),
                    groups=tuple(scope.get("groups", [])),
                    tenants=tuple(scope.get("tenants", [])),
                    resources=tuple(scope.get("resources", [])),
                    everywhere=bool(scope.get("all", False)),
                ),
                justification=raw["justification"],
                requested_by=raw["requested_by"],
                approved_by=raw["approved_by"],
                expires=expires,
                ticket=raw.get("ticket", ""),
                source=ctx.source,
                line=ctx.line(path),
            )
        )
    if ctx.problems:
        raise PolicyError(ctx.issues())
    return waivers


def check_waivers_against(waivers: list[Waiver], policies: list[Policy]) -> list[Issue]:
    """Waivers naming a check that none of the given policies defines."""
    issues: list[Issue] = []
    for waiver in waivers:
        candidates = [p for p in policies if waiver.policy is None or p.id == waiver.policy]
        if not any(p.check(waiver.check) for p in candidates):
            where = f" in policy {waiver.policy}" if waiver.policy else ""
            issues.append(
                Issue(
                    waiver.source,
                    waiver.line,
                    f"waiver {waiver.id} names unknown check {waiver.check!r}{where}",
                )
            )
    return issues


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
            source, document = _read(path)
        except PolicyError as exc:
            loaded.issues.extend(exc.issues)
            continue
        try:
            if isinstance(document.data, dict) and "waivers" in document.data:
                loaded.waivers.extend(_load_waivers(document.data, _Context(source, document)))
            else:
                loaded.policies.append(_load_policy(document.data, _Context(source, document)))
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
    "FactScope",
    "Issue",
    "PolicyError",
    "load_files",
    "load_policy_document",
    "load_policy_file",
    "load_policy_text",
    "load_waiver_document",
    "load_waiver_file",
]
