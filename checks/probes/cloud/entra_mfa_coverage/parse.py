"""Counting MFA coverage over registration-report records, fed one at a time, with capped evidence.

Who counts: member users. Guests are left out and counted apart, because their MFA happens in their
home tenant and this report cannot see it. Disabled accounts are not in the report at all. What counts
as covered: `isMfaCapable` (registered a strong method *and* allowed to use it by policy), not
`isMfaRegistered`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.probes.registry import Facts

# 1,000 users named is enough for a person to act on and for an auditor to sample; it keeps a stored
# result near 200 KB. The totals are exact whatever the cap.
DEFAULT_EVIDENCE_LIMIT = 1000


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
