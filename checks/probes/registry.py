"""The probe registry: each probe is a declarative spec plus one collector per platform.

A spec names the probe, describes it, declares its parameters and the typed facts it returns, and
carries a YAML example that the test suite runs as a real policy. Collectors gather raw output through
a `Host` (or, for cloud probes, a cloud context) and hand it to pure parsing functions.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Facts = dict[str, Any]
Params = dict[str, Any]

PLATFORMS = ("linux", "windows", "darwin")
# Cloud probes observe a tenant or its resources rather than a machine.
CLOUD_PLATFORMS = ("microsoft365", "azure")

# A fact a probe may return: {fact name: why it is null}, said in words (what is known instead, when it will
# be known). The evaluator shows it in place of "the probe could not determine it".
UNKNOWN_BECAUSE = "unknown_because"

# JSON Schema type names; `array` and `object` may describe their items / properties.
FIELD_TYPES = ("boolean", "integer", "number", "string", "array", "object")


@dataclass(frozen=True)
class Field:
    """A parameter of a probe, or a fact it returns (also an item field of a list of objects)."""

    name: str
    type: str
    description: str
    required: bool = True
    default: Any = None
    nullable: bool = False  # a fact that is null when it cannot be known on this machine
    enum: tuple[Any, ...] | None = None
    items: str | None = None  # item type of an array of scalars
    fields: tuple[Field, ...] = ()  # item fields of an array of objects, or properties of an object
    # For parameters: the grammar a string (or each string of an array) must match in full, its longest
    # length, and whether it is a regular expression. Checked by the loader and again before a probe runs.
    pattern: str | None = None
    max_length: int | None = None
    regex: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"description": self.description}
        types: list[str] = [self.type]
        if self.type == "number":
            types = ["number", "integer"]
        if self.nullable:
            types.append("null")
        schema["type"] = types[0] if len(types) == 1 else types
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.type == "array":
            if self.fields:
                schema["items"] = object_schema(self.fields)
            elif self.items:
                schema["items"] = {"type": self.items, **self._string_rules()}
        elif self.type == "string":
            schema.update(self._string_rules())
        elif self.type == "object" and self.fields:
            schema.update(object_schema(self.fields))
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def _string_rules(self) -> dict[str, Any]:
        rules: dict[str, Any] = {}
        if self.pattern is not None:
            rules["pattern"] = self.pattern
        if self.max_length is not None:
            rules["maxLength"] = self.max_length
        if self.regex:
            rules["format"] = "regex"
        return rules


def object_schema(fields: tuple[Field, ...], *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.json_schema() for f in fields},
        "required": [f.name for f in fields if f.required and f.default is None],
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


Collector = Callable[[Any, Params], Any]
# What a platform allows a parameter to be, beyond the spec's grammar: (params, platform) -> problems, each
# (parameter name, message). Parameters that reach a program are checked this way before it starts.
ParamCheck = Callable[[Params, str], list[tuple[str, str]]]
# The files whose content a probe reads because the policy named them (the read allow-list applies).
ContentReads = Callable[[Params], tuple[str, ...]]


def _reads_nothing(params: Params) -> tuple[str, ...]:
    return ()


@dataclass
class ProbeSpec:
    """A probe's contract. `scope` says what one set of facts describes:

    - `host`: the machine the agent runs on; the collector returns one `Facts`.
    - `tenant`: a Microsoft 365 tenant; one `Facts`.
    - `resource`: cloud resources; the collector returns a list of `ResourceFacts`, one result each.
    """

    name: str
    description: str
    facts: tuple[Field, ...]
    params: tuple[Field, ...] = ()
    example: str = ""
    scope: str = "host"
    permissions: tuple[str, ...] = ()  # what a cloud probe needs granted, named in its errors
    collectors: dict[str, Collector] = field(default_factory=dict)
    check_params: ParamCheck | None = None
    reads: ContentReads = _reads_nothing

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(sorted(self.collectors))

    def collector(self, *platforms: str) -> Callable[[Collector], Collector]:
        def register(function: Collector) -> Collector:
            for platform in platforms:
                if platform not in PLATFORMS + CLOUD_PLATFORMS:
                    raise ValueError(f"probe {self.name}: unknown platform {platform!r}")
                if platform in self.collectors:
                    raise ValueError(f"probe {self.name}: two collectors for {platform}")
                self.collectors[platform] = function
            return function

        return register

    def fact(self, name: str) -> Field | None:
        for candidate in self.facts:
            if candidate.name == name:
                return candidate
        return None

    def param(self, name: str) -> Field | None:
        for candidate in self.params:
            if candidate.name == name:
                return candidate
        return None

    def params_with_defaults(self, params: Params) -> Params:
        merged = {p.name: p.default for p in self.params if p.default is not None}
        merged.update(params)
        return merged


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


def shown(value: Any, limit: int = 80) -> str:
    """A parameter as an error message shows it: quoted, every non-ASCII or control character escaped."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _string_problem(field: Field, value: str) -> str | None:
    if "\x00" in value:
        return f"{shown(value)} contains a NUL character"
    if field.max_length is not None and len(value) > field.max_length:
        return f"is longer than {field.max_length} characters"
    if field.pattern is not None and re.fullmatch(field.pattern, value) is None:
        return f"{shown(value)} does not have the expected form ({field.pattern})"
    if field.regex:
        try:
            re.compile(value)
        except re.error as exc:
            return f"{shown(value)} is not a regular expression: {exc}"
    return None


def param_problems(spec: ProbeSpec, params: Params, platform: str | None) -> list[tuple[str, str]]:
    """What is wrong with a probe's parameters (defaults applied), each as (parameter, message).

    The loader reports these with file:line; `collect` checks them again before any collector runs, so a
    policy that reached the agent some other way (a bundle, an input override) cannot smuggle a value
    past the grammar. `platform` adds the platform's own rules (a Debian package name, a systemd unit).
    """
    problems: list[tuple[str, str]] = []
    declared = {p.name: p for p in spec.params}
    for name in params:
        if name not in declared:
            problems.append((name, f"probe {spec.name} has no parameter {name!r}"))
    for name, declared_field in declared.items():
        value = params.get(name)
        if value is None:
            if declared_field.required and declared_field.default is None:
                problems.append((name, f"probe {spec.name} needs parameter {name!r}"))
            continue
        if isinstance(value, bool) != (declared_field.type == "boolean") or not isinstance(
            value, _PY_TYPES[declared_field.type]
        ):
            problems.append((name, f"expected {declared_field.type}, got {shown(value)}"))
            continue
        if declared_field.enum is not None and value not in declared_field.enum:
            problems.append((name, f"{shown(value)} is not one of {', '.join(map(str, declared_field.enum))}"))
            continue
        strings: list[Any] = [value] if isinstance(value, str) else []
        if isinstance(value, list) and declared_field.items == "string":
            strings = value
        for item in strings:
            if not isinstance(item, str):
                problems.append((name, f"expected a list of strings, got {shown(item)}"))
                break
            problem = _string_problem(declared_field, item)
            if problem is not None:
                problems.append((name, problem))
                break
    if not problems and platform is not None and spec.check_params is not None:
        problems.extend(spec.check_params(params, platform))
    return problems


@dataclass(frozen=True)
class ResourceFacts:
    """The facts of one cloud resource (a storage account, an NSG, ...).

    `error` is set instead of facts when this resource (or a whole subscription) could not be read, so
    that one unreadable subscription gives an `error` result of its own without hiding the others.
    `listing_failed` says it is the second kind: the subscription's resources could not be listed, so
    what is known of them from earlier runs stands (collector/cloud/store.py).
    """

    resource_id: str
    name: str
    facts: Facts
    error: str | None = None
    listing_failed: bool = False


_REGISTRY: dict[str, ProbeSpec] = {}

_loaded = False


def register(spec: ProbeSpec) -> ProbeSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"probe {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


class ProbeLayoutError(ValueError):
    """A probe package that breaks the layout: its spec's name is not its folder's, or it has no SPEC."""


def load_specs(package: str) -> list[ProbeSpec]:
    """Import the `spec` module of every probe package under `package`, at any depth, and return their SPECs.

    A folder holding a spec.py is one probe, named after the folder (checks/probes/<probe_id>/); a folder
    without one (cloud/) only groups probes and is walked into. Only packages and their spec modules are
    imported here: a spec imports the collectors it names, nothing else is loaded."""
    specs: list[ProbeSpec] = []
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        if not info.ispkg:
            continue
        child = importlib.import_module(info.name)
        if any(module.name == "spec" for module in pkgutil.iter_modules(child.__path__)):
            specs.append(_load_spec(info.name))
        else:
            specs.extend(load_specs(info.name))
    return specs


def _load_spec(package: str) -> ProbeSpec:
    module = importlib.import_module(f"{package}.spec")
    folder = package.rpartition(".")[2]
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ProbeSpec):
        raise ProbeLayoutError(f"{module.__file__}: defines no SPEC = register(ProbeSpec(...))")
    if spec.name != folder:
        raise ProbeLayoutError(
            f"{module.__file__}: the probe is named {spec.name!r} but its folder is {folder!r} "
            f"(a probe's folder is its name: rename one of them)"
        )
    if _REGISTRY.get(spec.name) is not spec:
        raise ProbeLayoutError(f"{module.__file__}: SPEC is not registered (write SPEC = register(ProbeSpec(...)))")
    return spec


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    # Set first: a spec that asks the registry while it loads must not start the walk again.
    _loaded = True
    try:
        load_specs("checks.probes")
    except BaseException:
        _loaded = False  # the next use raises again instead of answering from half a registry
        raise


def get(name: str) -> ProbeSpec | None:
    _load_builtins()
    return _REGISTRY.get(name)


def all_probes() -> Iterator[ProbeSpec]:
    _load_builtins()
    yield from sorted(_REGISTRY.values(), key=lambda spec: spec.name)


def names() -> list[str]:
    return [spec.name for spec in all_probes()]
