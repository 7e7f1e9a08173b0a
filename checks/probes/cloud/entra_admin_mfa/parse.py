"""Which roles the counting policies cover: a policy for all users, or including the role, not excluding it."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import lower_all
from checks.probes.cloud.conditional_access import ADMIN_ROLES, TenantPolicies, common_facts, covered_by, part
from checks.probes.registry import Facts


def role_coverage(
    tenant: TenantPolicies, counting: list[dict[str, Any]], not_counted: list[dict[str, Any]], roles: list[str]
) -> Facts:
    covered: list[dict[str, Any]] = []
    uncovered: list[dict[str, Any]] = []
    used: dict[int, dict[str, Any]] = {}
    for role in roles:
        covering: list[dict[str, Any]] = []
        for index, policy in enumerate(counting):
            users = part(policy, "users")
            included = "all" in lower_all(users.get("includeUsers")) or role.lower() in lower_all(
                users.get("includeRoles")
            )
            if included and role.lower() not in lower_all(users.get("excludeRoles")):
                covering.append(policy)
                used[index] = policy
        by = covered_by(tenant, covering)
        entry = {"id": role, "name": ADMIN_ROLES.get(role.lower(), ""), "covered_by": by}
        (covered if by else uncovered).append(entry)
    relevant = [used[index] for index in sorted(used)]
    return {
        "required": not uncovered,
        "covered_roles": covered,
        "uncovered_roles": uncovered,
        **common_facts(tenant, relevant, not_counted),
    }
