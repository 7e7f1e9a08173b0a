"""Building a `Policy` from a document the schema accepted: the checks a schema cannot judge.

Expectations against the probe's declared facts, duplicate ids, input references and their types,
overrides, parameters against each platform's grammar, platforms a probe cannot run on, and the tests
section. Every problem goes to the `Context`, with its path; the loader raises them together.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from checks.durations import parse_duration
from checks.policy.documents import Context
from checks.policy.errors import PathT, render_path, schema_problems
from checks.policy.expr_parser import ExprParser, Problem, scope_of
from checks.policy.model import (
    DEFAULT_INTERVAL_S,
    Applicability,
    Check,
    InputDecl,
    Override,
    Policy,
    PolicyTest,
    ProbeRef,
    policy_hash,
)
from checks.probes import registry
from checks.results import Severity, Status

_INPUT_PY_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
}


def value_has_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _INPUT_PY_TYPES[type_name])


class PolicyBuilder:
    def __init__(self, data: dict[str, Any], ctx: Context) -> None:
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
            if not value_has_type(decl["default"], decl["type"]):
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
                elif not value_has_type(value, inputs[name].type):
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
        for problem in schema_problems(jsonschema.Draft202012Validator(schema), facts):
            self.problem(path + problem.path, f"facts for probe {probe}: {problem.message}")
