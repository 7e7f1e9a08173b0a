"""The JSON Schema of policy and waiver files, generated from the models and the probe registry.

Editors use `rampart-agent policy schema` for completion. The loader validates with the same schema,
except that expectations are checked by the expression parser, whose messages are more precise than
a schema validator's.
"""

from __future__ import annotations

from typing import Any

from checks.policy.expr import COMPARISONS
from checks.policy.model import CYBER_ESSENTIALS_THEMES, FRAMEWORKS
from checks.probes import registry
from checks.results import Severity, Status

SCHEMA_ID = "https://rampart.invalid/schema/policy-v1.json"
ID_PATTERN = "^[a-z0-9][a-z0-9._-]*$"
DURATION_PATTERN = "^[0-9]+[smhd]$"
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INPUT_TYPES = ("integer", "number", "string", "boolean", "array")
ALL_PLATFORMS = registry.PLATFORMS + registry.CLOUD_PLATFORMS


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _strings(description: str, **items: Any) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": {"type": "string", **items}}


def _input_ref() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The value of one of the policy's inputs",
        "properties": {"input": {"type": "string"}},
        "required": ["input"],
        "additionalProperties": False,
    }


def _expr_schema() -> dict[str, Any]:
    expr_list = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/expr"}}
    operand = {"anyOf": [{"type": ["string", "number", "boolean", "array", "null"]}, {"$ref": "#/$defs/input_ref"}]}
    count_ops = {
        op: {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/input_ref"}]}
        for op in ("eq", "ne", "lt", "lte", "gt", "gte")
    }
    properties: dict[str, Any] = {
        "all": {**expr_list, "description": "Every expectation holds"},
        "any": {**expr_list, "description": "At least one expectation holds"},
        "none": {**expr_list, "description": "No expectation holds"},
        "fact": _string("The fact tested: a name, a dotted path into an object, or `.` for a list item itself"),
        "every_item": {"$ref": "#/$defs/expr", "description": "Every item of the list fact satisfies this"},
        "any_item": {
            "$ref": "#/$defs/expr",
            "description": "At least one item of the list fact satisfies this",
        },
        "count": {
            "type": "object",
            "description": "The number of items (matching `where`) compared with a whole number",
            "properties": {"where": {"$ref": "#/$defs/expr"}, **count_ops},
            "additionalProperties": False,
        },
    }
    for op in COMPARISONS:
        properties[op] = dict(operand)
    properties["exists"] = {"type": "boolean", "description": "The fact is present and not null"}
    properties["matches"] = _string("A regular expression searched in the fact")
    return {
        "type": "object",
        "description": "all / any / none of expectations, or `fact` with one operator",
        "properties": properties,
        "additionalProperties": False,
        "minProperties": 1,
    }


def _probe_ref_schema(*, for_validation: bool = False) -> dict[str, Any]:
    probes = list(registry.all_probes())
    names = [spec.name for spec in probes]
    conditions: list[dict[str, Any]] = []
    for spec in probes:
        params = registry.object_schema(spec.params)
        if not for_validation:
            # A parameter may be an input reference; the loader checks it by validating the input's
            # default in its place, so only the editor schema needs the alternative.
            params["properties"] = {
                name: {"anyOf": [schema, {"$ref": "#/$defs/input_ref"}]}
                for name, schema in params["properties"].items()
            }
        conditions.append(
            {
                "if": {"properties": {"name": {"const": spec.name}}, "required": ["name"]},
                "then": {"properties": {"params": params}},
            }
        )
    return {
        "description": "The probe whose facts the check judges: a name, or {name, params}",
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": {"enum": names},
        "else": {
            "properties": {
                "name": {"enum": names, "description": "A probe from `rampart-agent policy probes`"},
                "params": {"type": "object", "description": "The probe's parameters"},
            },
            "required": ["name"],
            "additionalProperties": False,
            "allOf": conditions,
        },
    }


def _frameworks_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Framework controls this check gives evidence for",
        "properties": {
            "cyber_essentials": _strings(FRAMEWORKS["cyber_essentials"], enum=list(CYBER_ESSENTIALS_THEMES)),
            "ncsc_caf": _strings(FRAMEWORKS["ncsc_caf"], pattern="^[A-D][0-9]\\.[a-f]$"),
            "cis_controls_v8": _strings(FRAMEWORKS["cis_controls_v8"], pattern="^[0-9]{1,2}(\\.[0-9]{1,2})?$"),
        },
        "additionalProperties": False,
    }


def _check_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "title", "description", "rationale", "remediation", "severity", "probe", "expect"],
        "additionalProperties": False,
        "properties": {
            "id": _string("Stable identifier, unique in the policy", pattern=ID_PATTERN),
            "title": _string("One line saying what good looks like"),
            "description": _string("What the check observes"),
            "rationale": _string("Why it matters"),
            "remediation": _string("How to fix a failure"),
            "severity": {"enum": [s.value for s in Severity]},
            "weight": {"type": "number", "minimum": 0, "description": "Overrides the severity's weight"},
            "platforms": _strings("Where the check applies (default: where its probe runs)", enum=list(ALL_PLATFORMS)),
            "interval": _string("How often the agent runs it, e.g. 30m, 6h, 1d", pattern=DURATION_PATTERN),
            "probe": {"$ref": "#/$defs/probe_ref"},
            "expect": {"$ref": "#/$defs/expr"},
            "applicable_if": {
                "type": "object",
                "description": "The check applies only where this holds; otherwise the result is not_applicable",
                "required": ["expect", "reason"],
                "additionalProperties": False,
                "properties": {
                    "probe": {"$ref": "#/$defs/probe_ref"},
                    "expect": {"$ref": "#/$defs/expr"},
                    "reason": _string("Shown on not_applicable results, e.g. 'only hosts running an SSH server'"),
                },
            },
            "frameworks": _frameworks_schema(),
        },
    }


def _input_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "default", "description"],
        "additionalProperties": False,
        "properties": {
            "type": {"enum": list(INPUT_TYPES)},
            "default": {"description": "The value used unless an override for the subject's group says otherwise"},
            "description": {"type": "string"},
        },
    }


def _test_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "check", "status"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "check": {"type": "string", "description": "The id of the check under test"},
            "facts": {"type": "object", "description": "Recorded facts of the check's probe"},
            "probe_error": _string("The probe failed with this reason instead of returning facts"),
            "applicable_facts": {"type": "object", "description": "Facts of the applicable_if probe"},
            "applicable_error": {"type": "string"},
            "groups": _strings("Groups the subject is in (selects input overrides)"),
            "platform": {"enum": list(ALL_PLATFORMS)},
            "status": {"enum": [s.value for s in Status if s is not Status.WAIVED]},
            "reason_contains": _string("A part of the result's reason that must appear"),
        },
    }


def policy_schema(*, for_validation: bool = False) -> dict[str, Any]:
    defs: dict[str, Any] = {
        "expr": {} if for_validation else _expr_schema(),
        "input_ref": _input_ref(),
        "probe_ref": _probe_ref_schema(for_validation=for_validation),
        "check": _check_schema(),
        "input": _input_schema(),
        "test": _test_schema(),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Rampart policy",
        "type": "object",
        "required": ["id", "version", "title", "checks"],
        "additionalProperties": False,
        "properties": {
            "id": _string("Stable identifier of the policy", pattern=ID_PATTERN),
            "version": _string('The policy\'s version; quote it in YAML ("1.0", not 1.0)'),
            "title": {"type": "string"},
            "description": {"type": "string"},
            "scoring": {"enum": ["simple", "weighted"], "description": "weighted: by severity or weight"},
            "defaults": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"interval": _string("Default check interval", pattern=DURATION_PATTERN)},
            },
            "inputs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}},
            "overrides": {
                "type": "array",
                "description": "Input values for groups of subjects; later entries win",
                "items": {
                    "type": "object",
                    "required": ["groups", "inputs"],
                    "additionalProperties": False,
                    "properties": {"groups": _strings("Groups", minLength=1), "inputs": {"type": "object"}},
                },
            },
            "checks": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/check"}},
            "tests": {"type": "array", "items": {"$ref": "#/$defs/test"}},
        },
        "$defs": defs,
    }


def waiver_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://rampart.invalid/schema/waivers-v1.json",
        "title": "Rampart waivers",
        "type": "object",
        "required": ["waivers"],
        "additionalProperties": False,
        "properties": {
            "waivers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "id",
                        "check",
                        "scope",
                        "justification",
                        "requested_by",
                        "approved_by",
                        "expires",
                    ],
                    "additionalProperties": False,
                    "properties": {
                        "id": _string("Stable identifier of the waiver", minLength=1),
                        "check": _string("The id of the waived check"),
                        "policy": _string("The policy id, when check ids could clash"),
                        "scope": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": False,
                            "properties": {
                                "hosts": _strings("Host names or agent ids; * and ? wildcards"),
                                "groups": _strings("Agent groups"),
                                "tenants": _strings("Tenant ids or names"),
                                "resources": _strings("Cloud resource ids; * and ? wildcards"),
                                "all": {"type": "boolean", "description": "Every subject"},
                            },
                        },
                        "justification": _string("Why the risk is accepted", minLength=1),
                        "requested_by": _string("Who asked", minLength=1),
                        "approved_by": _string("Who accepted the risk; not the requester", minLength=1),
                        "ticket": _string("Change or risk ticket reference"),
                        "expires": _string("Last day the waiver applies (YYYY-MM-DD)", pattern=DATE_PATTERN),
                    },
                },
            }
        },
    }
