"""Role assignments -> the distinct principals holding Global Administrator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from checks.probes.registry import Facts

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
MAX_LISTED_ADMINS = 100  # a tenant with more Global Administrators than this has a bigger problem


def global_admin_facts(assignments: Iterable[dict[str, Any]]) -> Facts:
    principals: set[str] = set()
    for assignment in assignments:
        # The filter is the server's job, but an assignment of another role must never be counted.
        if str(assignment.get("roleDefinitionId") or "").lower() != GLOBAL_ADMINISTRATOR:
            continue
        if assignment.get("principalId"):
            principals.add(str(assignment["principalId"]))
    return {"count": len(principals), "principal_ids": sorted(principals)[:MAX_LISTED_ADMINS]}
