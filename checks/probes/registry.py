"""The probe registry: each probe is a declarative spec plus one collector per platform.

A spec names the probe, describes it, declares its parameters and the typed facts it returns, and
carries a YAML example that the test suite runs as a real policy. Collectors gather raw output through
a `Host` (or, for cloud probes, a cloud context) and hand it to pure parsing functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Facts = dict[str, Any]
Params = dict[str, Any]

PLATFORMS = ("linux", "windows", "darwin")
# Cloud probes observe a tenant or its resources rather than a machine.
CLOUD_PLATFORMS = ("microsoft365", "azure")

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
                schema["items"] = {"type": self.items}
        elif self.type == "object" and self.fields:
            schema.update(object_schema(self.fields))
        if self.default is not None:
            schema["default"] = self.default
        return schema


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

# Modules that define the built-in probes; imported on first use of the registry.
BUILTIN_MODULES = (
    "checks.probes.generic",
    "checks.probes.patches",
    "checks.probes.os_support",
    "checks.probes.disk_encryption",
    "checks.probes.firewall",
    "checks.probes.accounts",
    "checks.probes.antivirus",
    "checks.probes.sshd",
    "checks.probes.cloud.mfa",
    "checks.probes.cloud.conditional_access",
    "checks.probes.cloud.entra",
    "checks.probes.cloud.azure",
)
_loaded = False


def register(spec: ProbeSpec) -> ProbeSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"probe {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def get(name: str) -> ProbeSpec | None:
    _load_builtins()
    return _REGISTRY.get(name)


def all_probes() -> Iterator[ProbeSpec]:
    _load_builtins()
    yield from sorted(_REGISTRY.values(), key=lambda spec: spec.name)


def names() -> list[str]:
    return [spec.name for spec in all_probes()]
