"""The policy model: what the loader builds from YAML and the evaluator runs."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from checks.durations import parse_duration as parse_duration  # the one parser; here for older importers
from checks.policy.expr import Expr
from checks.results import Severity, Status, Subject, SubjectKind

DEFAULT_INTERVAL_S = 6 * 3600

FRAMEWORKS = {
    "cyber_essentials": "Cyber Essentials (NCSC / IASME) technical control themes",
    "ncsc_caf": "NCSC Cyber Assessment Framework contributing outcomes, e.g. B4.d",
    "cis_controls_v8": "CIS Critical Security Controls v8 safeguards, e.g. 7.3",
}
CYBER_ESSENTIALS_THEMES = (
    "firewalls",
    "secure_configuration",
    "security_update_management",
    "user_access_control",
    "malware_protection",
)


def canonical_json(data: Any) -> bytes:
    """The canonical byte form used for hashes and signatures: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def policy_hash(document: dict[str, Any]) -> str:
    """sha256 of the canonical form of what the policy judges by.

    The `tests:` section is left out: fixtures do not change how a machine is judged. Key order,
    comments and whitespace cannot change the hash because it is taken over the parsed data.
    """
    judged = {key: value for key, value in document.items() if key != "tests"}
    return hashlib.sha256(canonical_json(judged)).hexdigest()


@dataclass(frozen=True)
class ProbeRef:
    name: str
    params: dict[str, Any] = field(default_factory=dict)  # values may be {"input": NAME}


@dataclass
class Applicability:
    probe: ProbeRef
    expect: Expr
    raw_expect: Any
    reason: str


@dataclass
class Check:
    id: str
    title: str
    description: str
    rationale: str
    remediation: str
    severity: Severity
    probe: ProbeRef
    expect: Expr
    raw_expect: Any
    weight: float | None = None
    platforms: tuple[str, ...] | None = None
    interval_s: int = DEFAULT_INTERVAL_S
    applicable_if: Applicability | None = None
    frameworks: dict[str, list[str]] = field(default_factory=dict)
    line: int = 0


@dataclass
class InputDecl:
    name: str
    type: str
    default: Any
    description: str


@dataclass
class Override:
    groups: tuple[str, ...]
    inputs: dict[str, Any]


@dataclass
class PolicyTest:
    name: str
    check: str
    status: Status
    facts: dict[str, Any] | None = None
    probe_error: str | None = None
    applicable_facts: dict[str, Any] | None = None
    applicable_error: str | None = None
    groups: tuple[str, ...] = ()
    platform: str | None = None
    reason_contains: str | None = None
    line: int = 0


@dataclass
class Policy:
    id: str
    version: str
    title: str
    description: str
    scoring: str
    checks: list[Check]
    inputs: dict[str, InputDecl]
    overrides: list[Override]
    tests: list[PolicyTest]
    document: dict[str, Any]
    sha256: str
    source: str = ""

    def check(self, check_id: str) -> Check | None:
        for candidate in self.checks:
            if candidate.id == check_id:
                return candidate
        return None

    def inputs_for(self, groups: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """Input values in force for a subject in these groups: defaults, then matching overrides in order."""
        values = {name: decl.default for name, decl in self.inputs.items()}
        for override in self.overrides:
            if set(override.groups) & set(groups):
                values.update(override.inputs)
        return values


@dataclass
class WaiverScope:
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    everywhere: bool = False

    def covers(self, subject: Subject, groups: tuple[str, ...] | list[str] = ()) -> bool:
        if self.everywhere:
            return True
        if subject.kind is SubjectKind.HOST:
            names = [subject.id, subject.name]
            if any(fnmatch.fnmatchcase(n.lower(), p.lower()) for p in self.hosts for n in names if n):
                return True
            return bool(set(self.groups) & set(groups))
        if subject.kind is SubjectKind.TENANT:
            return subject.id in self.tenants or subject.name in self.tenants
        return any(fnmatch.fnmatchcase(subject.id.lower(), p.lower()) for p in self.resources) or bool(
            set(self.groups) & set(groups)
        )


@dataclass
class Waiver:
    id: str
    check: str
    policy: str | None
    scope: WaiverScope
    justification: str
    requested_by: str
    approved_by: str
    expires: dt.date
    ticket: str = ""
    source: str = ""
    line: int = 0

    def expired(self, today: dt.date) -> bool:
        """A waiver is valid through the whole of its expiry date."""
        return today > self.expires

    def applies_to(self, policy_id: str, check_id: str) -> bool:
        return self.check == check_id and (self.policy is None or self.policy == policy_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check,
            "policy": self.policy,
            "scope": {
                "hosts": list(self.scope.hosts),
                "groups": list(self.scope.groups),
                "tenants": list(self.scope.tenants),
                "resources": list(self.scope.resources),
                "all": self.scope.everywhere,
            },
            "justification": self.justification,
            "requested_by": self.requested_by,
            "approved_by": self.approved_by,
            "ticket": self.ticket,
            "expires": self.expires.isoformat(),
        }
