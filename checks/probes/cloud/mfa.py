"""MFA coverage from the authentication-methods registration report, counted while the pages stream.

One request per page of `userRegistrationDetails` (never one per user: per-user method lookups stall on
large tenants). Counts are exact however large the tenant; the users listed by name as evidence are
capped, so memory stays bounded: only `evidence_limit` entries (at most twice that while sorting) are
held at any time, never the tenant.

Who counts: member users. Guests are left out and counted apart, because their MFA happens in their
home tenant and this report cannot see it. Disabled accounts are not in the report at all. What counts
as covered: `isMfaCapable` (registered a strong method *and* allowed to use it by policy), not
`isMfaRegistered`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register

REPORT_PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
SELECT = "id,userPrincipalName,userDisplayName,userType,isAdmin,isMfaCapable,isMfaRegistered,methodsRegistered"

# 1,000 users named is enough for a person to act on and for an auditor to sample; it keeps a stored
# result near 200 KB. The totals are exact whatever the cap.
DEFAULT_EVIDENCE_LIMIT = 1000

USER_FIELDS = (
    Field("id", "string", "Object id of the user"),
    Field("user_principal_name", "string", "Sign-in name"),
    Field("display_name", "string", "Display name"),
    Field("is_admin", "boolean", "Holds an administrative role"),
    Field("methods_registered", "array", "Authentication methods the user has registered", items="string"),
)

MFA_COVERAGE = register(
    ProbeSpec(
        name="entra_mfa_coverage",
        description="Share of member users who are MFA capable, from the Entra ID registration report "
        "(guests and disabled accounts are not counted); the users who are not, listed as evidence",
        scope="tenant",
        permissions=("AuditLog.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "evidence_limit",
                "integer",
                "Most users listed by name in `users_without_mfa` and `admins_without_mfa_list` "
                "(the first by sign-in name); counts are always exact",
                required=False,
                default=DEFAULT_EVIDENCE_LIMIT,
            ),
        ),
        facts=(
            Field("members", "integer", "Member users in the report (enabled accounts; guests not counted)"),
            Field("mfa_capable", "integer", "Members who are MFA capable"),
            Field("not_mfa_capable", "integer", "Members who are not MFA capable"),
            Field(
                "coverage_percent",
                "number",
                "mfa_capable / members x 100, two decimals; null when the tenant has no members",
                nullable=True,
            ),
            Field("admins", "integer", "Members marked as holding an administrative role"),
            Field("admins_without_mfa", "integer", "Administrators who are not MFA capable"),
            Field("guests_not_counted", "integer", "Guest users left out of the counts"),
            Field("users_without_mfa", "array", "Members who are not MFA capable (capped)", fields=USER_FIELDS),
            Field("admins_without_mfa_list", "array", "Administrators not MFA capable (capped)", fields=USER_FIELDS),
            Field("evidence_truncated", "boolean", "More users lack MFA than are listed"),
            Field("evidence_limit", "integer", "The cap on the lists"),
            Field("pages", "integer", "Report pages read"),
        ),
        example="""\
- id: mfa-coverage
  title: At least 95% of users can sign in with MFA
  description: Counts member users who are MFA capable in the Entra ID registration report.
  rationale: Passwords alone are phished and guessed; MFA stops most account takeovers.
  remediation: Require users to register for MFA (registration campaign or conditional access).
  severity: high
  platforms: [microsoft365]
  probe: entra_mfa_coverage
  expect: {fact: coverage_percent, gte: 95}
""",
    )
)


class BoundedList:
    """The first `limit` items by `key`, in key order, holding at most 2 x limit items at any time."""

    def __init__(self, limit: int, key: str) -> None:
        self.limit = max(0, limit)
        self.key = key
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, item: dict[str, Any]) -> None:
        self.total += 1
        if self.limit == 0:
            return
        self.items.append(item)
        if len(self.items) >= 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        self.items.sort(key=lambda item: (str(item[self.key]).lower(), str(item["id"])))
        del self.items[self.limit :]

    def result(self) -> list[dict[str, Any]]:
        self._trim()
        return self.items

    @property
    def truncated(self) -> bool:
        return self.total > len(self.result())


@dataclass
class Coverage:
    """Running totals over the report, fed one record at a time."""

    evidence_limit: int = DEFAULT_EVIDENCE_LIMIT
    members: int = 0
    mfa_capable: int = 0
    admins: int = 0
    guests: int = 0
    pages: int = 0
    without: BoundedList = field(init=False)
    admins_without: BoundedList = field(init=False)

    def __post_init__(self) -> None:
        self.without = BoundedList(self.evidence_limit, "user_principal_name")
        self.admins_without = BoundedList(self.evidence_limit, "user_principal_name")

    def add(self, record: dict[str, Any]) -> None:
        # Only an explicit guest is left out: a record without userType is counted, not silently dropped.
        if str(record.get("userType") or "member").lower() == "guest":
            self.guests += 1
            return
        self.members += 1
        is_admin = record.get("isAdmin") is True
        if is_admin:
            self.admins += 1
        if record.get("isMfaCapable") is True:
            self.mfa_capable += 1
            return
        entry = {
            "id": str(record.get("id") or ""),
            "user_principal_name": str(record.get("userPrincipalName") or ""),
            "display_name": str(record.get("userDisplayName") or ""),
            "is_admin": is_admin,
            "methods_registered": [str(m) for m in record.get("methodsRegistered") or []],
        }
        self.without.add(entry)
        if is_admin:
            self.admins_without.add(entry)

    def facts(self) -> Facts:
        percent = None if self.members == 0 else round(100.0 * self.mfa_capable / self.members, 2)
        return {
            "members": self.members,
            "mfa_capable": self.mfa_capable,
            "not_mfa_capable": self.members - self.mfa_capable,
            "coverage_percent": percent,
            "admins": self.admins,
            "admins_without_mfa": self.admins_without.total,
            "guests_not_counted": self.guests,
            "users_without_mfa": self.without.result(),
            "admins_without_mfa_list": self.admins_without.result(),
            "evidence_truncated": self.without.truncated or self.admins_without.truncated,
            "evidence_limit": self.evidence_limit,
            "pages": self.pages,
        }


@cloud_collector(MFA_COVERAGE, "microsoft365")
def collect_mfa_coverage(context: CloudContext, params: Params) -> Facts:
    coverage = Coverage(evidence_limit=int(params["evidence_limit"]))
    for page in context.graph_pages(REPORT_PATH, {"$select": SELECT}):
        coverage.pages += 1
        for record in page:
            coverage.add(record)
    return coverage.facts()
