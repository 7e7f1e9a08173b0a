"""The result of judging one check on one subject in one run."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    WAIVED = "waived"


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


# Weights used when a policy asks for severity-weighted scoring and a check names no weight of its own.
SEVERITY_WEIGHTS: dict[Severity, float] = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 5.0,
    Severity.MEDIUM: 3.0,
    Severity.LOW: 1.0,
    Severity.INFO: 0.0,
}


class SubjectKind(enum.StrEnum):
    HOST = "host"
    TENANT = "tenant"
    CLOUD_RESOURCE = "cloud_resource"


@dataclass(frozen=True)
class Subject:
    """What a result is about: a host (by agent id), a tenant, or a cloud resource."""

    kind: SubjectKind
    id: str
    name: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "id": self.id, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subject:
        return cls(SubjectKind(data["kind"]), str(data["id"]), str(data.get("name", "")))


@dataclass
class Result:
    """One result per (subject, check, run).

    `observed` holds the facts the check was judged on; `expectation` the expectation as written in the
    policy (inputs resolved). `reason` explains error and not_applicable, and notes an expired waiver.
    A waived result keeps the status it would have had in `waived_status`.
    """

    check_id: str
    status: Status
    severity: Severity
    title: str
    policy_id: str
    policy_version: str
    policy_hash: str
    observed: dict[str, Any] = field(default_factory=dict)
    expectation: Any = None
    reason: str = ""
    weight: float | None = None
    waiver_id: str | None = None
    waived_status: Status | None = None
    frameworks: dict[str, list[str]] = field(default_factory=dict)
    evaluated_at: str = ""
    duration_ms: int = 0
    subject: Subject | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.value,
            "weight": self.weight,
            "reason": self.reason,
            "observed": self.observed,
            "expectation": self.expectation,
            "waiver_id": self.waiver_id,
            "waived_status": self.waived_status.value if self.waived_status else None,
            "frameworks": self.frameworks,
            "policy": {"id": self.policy_id, "version": self.policy_version, "hash": self.policy_hash},
            "evaluated_at": self.evaluated_at,
            "duration_ms": self.duration_ms,
            "subject": self.subject.to_dict() if self.subject else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        policy = data["policy"]
        waived = data.get("waived_status")
        return cls(
            check_id=data["check_id"],
            title=data.get("title", ""),
            status=Status(data["status"]),
            severity=Severity(data["severity"]),
            weight=data.get("weight"),
            reason=data.get("reason", ""),
            observed=data.get("observed") or {},
            expectation=data.get("expectation"),
            waiver_id=data.get("waiver_id"),
            waived_status=Status(waived) if waived else None,
            frameworks=data.get("frameworks") or {},
            policy_id=policy["id"],
            policy_version=policy["version"],
            policy_hash=policy["hash"],
            evaluated_at=data.get("evaluated_at", ""),
            duration_ms=int(data.get("duration_ms", 0)),
            subject=Subject.from_dict(data["subject"]) if data.get("subject") else None,
        )


@dataclass(frozen=True)
class Score:
    """passed / (passed + failed), weighted where asked; errors are counted beside it, never dropped."""

    passed: float
    failed: float
    errors: int
    not_applicable: int
    waived: int

    @property
    def ratio(self) -> float | None:
        judged = self.passed + self.failed
        return None if judged == 0 else self.passed / judged


def score(results: list[Result], weighted: bool = False) -> Score:
    passed = failed = 0.0
    counts = {Status.ERROR: 0, Status.NOT_APPLICABLE: 0, Status.WAIVED: 0}
    for result in results:
        if result.status in counts:
            counts[result.status] += 1
            continue
        weight = 1.0
        if weighted:
            weight = result.weight if result.weight is not None else SEVERITY_WEIGHTS[result.severity]
        if result.status is Status.PASS:
            passed += weight
        elif result.status is Status.FAIL:
            failed += weight
    return Score(passed, failed, counts[Status.ERROR], counts[Status.NOT_APPLICABLE], counts[Status.WAIVED])
