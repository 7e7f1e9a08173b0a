"""Security defaults and conditional access: is MFA enforced, is legacy authentication blocked, do admin
roles need MFA?

The decision rules are strict on purpose, because the tools others use count policies that do not
enforce anything:

- only an `enabled` policy counts; report-only (`enabledForReportingButNotEnforced`) and disabled ones
  are listed under `not_counted` with the reason;
- it must apply to all applications, with no user- or sign-in-risk scoping and no location or platform
  scoping;
- MFA means the grant requires `mfa` or an authentication strength that satisfies MFA; a policy where
  MFA is one choice among others (operator OR with, say, compliantDevice) does not require MFA;
- exclusions are listed as evidence, and `excluded_*` holds the principals excluded from *every*
  counting policy, i.e. those no policy covers;
- for MFA for all users, an exclusion is a gap unless it leaves out only the emergency (break-glass)
  accounts the collector's config names (`cloud.emergency_accounts`): excluded groups and roles are
  expanded to their users (checks/probes/cloud/directory.py), and a user excluded from every counting
  policy and not an emergency account is uncovered: MFA is then not enforced for all users, and the
  facts name who is left out.

This module is the evaluator the three probes share (entra_mfa_enforcement, entra_legacy_auth,
entra_admin_mfa: each a package beside it): reading the policies, judging one policy, and the facts all
three report. It holds no probe spec.

Security defaults, when on, enforce MFA registration and challenge, block legacy authentication and
require MFA for administrators, and cannot coexist with conditional access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checks.probes.cloud.common import graph_items, lower_all
from checks.probes.cloud.context import CloudContext, CloudError
from checks.probes.registry import Facts, Field

SECURITY_DEFAULTS_PATH = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy"
POLICIES_PATH = "/v1.0/identity/conditionalAccess/policies"
PERMISSIONS = ("Policy.Read.All (Microsoft Graph application permission)",)

# The roles Microsoft's "require MFA for administrators" template and security defaults cover
# (template ids from the Entra built-in roles reference).
ADMIN_ROLES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
}
LEGACY_CLIENT_TYPES = {"exchangeactivesync", "other"}
# excludeUsers may name these instead of user ids; guests are not judged here (see mfa-coverage).
SPECIAL_USERS = {"guestsorexternalusers", "all", "none"}
MAX_LISTED_UNCOVERED = 1000  # as mfa_evidence_limit: enough to act on, and a stored result stays small
MODERN_CLIENT_TYPES = {"browser", "mobileappsanddesktopclients"}

# --- reading ---------------------------------------------------------------------------------------------


@dataclass
class TenantPolicies:
    security_defaults: bool
    policies: list[dict[str, Any]]
    readable: bool  # False when conditional access could not be read but security defaults answer anyway


def read_policies(context: CloudContext) -> TenantPolicies:
    document = context.graph_get(SECURITY_DEFAULTS_PATH)
    security_defaults = document.get("isEnabled") is True
    try:
        policies = list(graph_items(context, POLICIES_PATH))
    except CloudError:
        # Security defaults and conditional access exclude each other; a tenant on security defaults
        # often has no licence for conditional access, and the answer does not depend on it.
        if security_defaults:
            return TenantPolicies(True, [], readable=False)
        raise
    return TenantPolicies(security_defaults, policies, readable=True)


# --- judging one policy ----------------------------------------------------------------------------------


def _conditions(policy: dict[str, Any]) -> dict[str, Any]:
    return policy.get("conditions") or {}


def part(policy: dict[str, Any], name: str) -> dict[str, Any]:
    value = _conditions(policy).get(name)
    return value if isinstance(value, dict) else {}


def summary(policy: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(policy.get("id") or ""), "name": str(policy.get("displayName") or "")}


def exclusions(policy: dict[str, Any]) -> dict[str, Any]:
    users = part(policy, "users")
    return {
        "users": [str(u) for u in users.get("excludeUsers") or []],
        "groups": [str(g) for g in users.get("excludeGroups") or []],
        "roles": [str(r) for r in users.get("excludeRoles") or []],
        "guests_or_external_users": bool(users.get("excludeGuestsOrExternalUsers")),
        "locations": [str(loc) for loc in part(policy, "locations").get("excludeLocations") or []],
        "platforms": [str(p) for p in part(policy, "platforms").get("excludePlatforms") or []],
    }


def scope_gaps(policy: dict[str, Any], *, all_users: bool) -> list[str]:
    """Why a policy does not apply everywhere (empty when it does)."""
    gaps = []
    state = str(policy.get("state") or "")
    if state == "enabledForReportingButNotEnforced":
        gaps.append("report-only: it logs but does not enforce")
    elif state != "enabled":
        gaps.append(f"state is {state or 'unknown'}")
    users = part(policy, "users")
    if all_users and "all" not in lower_all(users.get("includeUsers")):
        gaps.append("applies to selected users, groups or roles, not all users")
    if "all" not in lower_all(part(policy, "applications").get("includeApplications")):
        gaps.append("applies to selected applications, not all")
    for key, label in (("userRiskLevels", "user risk"), ("signInRiskLevels", "sign-in risk")):
        levels = lower_all(_conditions(policy).get(key))
        if levels:
            gaps.append(f"applies only at {label} {', '.join(levels)}")
    locations = lower_all(part(policy, "locations").get("includeLocations"))
    if locations and "all" not in locations:
        gaps.append("applies only in selected locations")
    platforms = lower_all(part(policy, "platforms").get("includePlatforms"))
    if platforms and "all" not in platforms:
        gaps.append("applies only on selected device platforms")
    return gaps


def client_types(policy: dict[str, Any]) -> set[str]:
    return set(lower_all(_conditions(policy).get("clientAppTypes")))


def grants_mfa(policy: dict[str, Any]) -> tuple[bool, str]:
    """(MFA offered at all, why it is not required) — the reason is empty when MFA is required."""
    grant = policy.get("grantControls") or {}
    controls = lower_all(grant.get("builtInControls"))
    strength = grant.get("authenticationStrength") or {}
    strength_mfa = isinstance(strength, dict) and "mfa" in lower_all(strength.get("requirementsSatisfied"))
    if "mfa" not in controls and not strength_mfa:
        return False, "does not require MFA"
    others = [control for control in controls if control != "mfa"]
    if str(grant.get("operator") or "OR").upper() == "OR" and others:
        return True, f"MFA is one choice among others: {', '.join(others)} passes without MFA"
    return True, ""


def mfa_gaps(policy: dict[str, Any], *, all_users: bool) -> list[str] | None:
    """None for a policy that has nothing to do with MFA; otherwise why it does not enforce MFA."""
    offered, why = grants_mfa(policy)
    if not offered:
        return None
    gaps = scope_gaps(policy, all_users=all_users)
    types = client_types(policy)
    if types and "all" not in types and not MODERN_CLIENT_TYPES <= types:
        gaps.append(f"applies only to client apps {', '.join(sorted(types))}")
    if why:
        gaps.append(why)
    return gaps


def legacy_block_gaps(policy: dict[str, Any]) -> list[str] | None:
    """None for a policy that does not block legacy clients; otherwise why it does not count."""
    grant = policy.get("grantControls") or {}
    types = client_types(policy)
    if "block" not in lower_all(grant.get("builtInControls")) or not (types & (LEGACY_CLIENT_TYPES | {"all"})):
        return None
    gaps = scope_gaps(policy, all_users=True)
    if "all" not in types and not LEGACY_CLIENT_TYPES <= types:
        gaps.append(f"blocks {', '.join(sorted(types & LEGACY_CLIENT_TYPES))} but not both legacy client types")
    return gaps


def excluded_everywhere(policies: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Principals excluded from every counting policy: those no policy covers."""
    if not policies:
        return {"users": [], "groups": [], "roles": []}
    result = {}
    for kind in ("users", "groups", "roles"):
        sets = [set(exclusions(p)[kind]) for p in policies]
        result[kind] = sorted(set.intersection(*sets))
    return result


# --- facts the three probes share ----------------------------------------------------------------------

POLICY_FIELDS = (
    Field("id", "string", "Policy id"),
    Field("name", "string", "Display name"),
    Field(
        "exclusions",
        "object",
        "Who and where the policy leaves out",
        fields=(
            Field("users", "array", "Excluded user ids", items="string"),
            Field("groups", "array", "Excluded group ids", items="string"),
            Field("roles", "array", "Excluded role template ids", items="string"),
            Field("guests_or_external_users", "boolean", "Guests or external users excluded"),
            Field("locations", "array", "Excluded named locations", items="string"),
            Field("platforms", "array", "Excluded device platforms", items="string"),
        ),
    ),
)
NOT_COUNTED_FIELDS = (
    Field("id", "string", "Policy id"),
    Field("name", "string", "Display name"),
    Field("state", "string", "enabled, disabled or enabledForReportingButNotEnforced"),
    Field("reasons", "array", "Why it does not count", items="string"),
)
COMMON_FACTS = (
    Field("security_defaults_enabled", "boolean", "Entra ID security defaults are on"),
    Field(
        "conditional_access_policies",
        "integer",
        "Conditional access policies in the tenant (null when unreadable and security defaults decide)",
        nullable=True,
    ),
    Field("not_counted", "array", "Related policies that do not count, with the reasons", fields=NOT_COUNTED_FIELDS),
    Field("excluded_users", "array", "User ids excluded from every counting policy", items="string"),
    Field("excluded_groups", "array", "Group ids excluded from every counting policy", items="string"),
    Field("excluded_roles", "array", "Role template ids excluded from every counting policy", items="string"),
)


def sort_policies(
    tenant: TenantPolicies, gaps_of: Callable[[dict[str, Any]], list[str] | None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(policies that count, the relevant ones that do not, each with why); None from gaps_of: irrelevant."""
    counting: list[dict[str, Any]] = []
    not_counted: list[dict[str, Any]] = []
    for policy in tenant.policies:
        gaps = gaps_of(policy)
        if gaps is None:
            continue
        if gaps:
            not_counted.append(not_counted_entry(policy, gaps))
        else:
            counting.append(policy)
    return counting, not_counted


def not_counted_entry(policy: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    return {**summary(policy), "state": str(policy.get("state") or ""), "reasons": reasons}


def covered_by(tenant: TenantPolicies, policies: list[dict[str, Any]]) -> list[str]:
    """What enforces it: security defaults and/or the policies, by name."""
    defaults = ["security defaults"] if tenant.security_defaults else []
    return defaults + [str(p.get("displayName") or p.get("id")) for p in policies]


def counted(policy: dict[str, Any]) -> dict[str, Any]:
    return {**summary(policy), "exclusions": exclusions(policy)}


def common_facts(tenant: TenantPolicies, counting: list[dict[str, Any]], not_counted: list[dict[str, Any]]) -> Facts:
    excluded = excluded_everywhere(counting) if not tenant.security_defaults else excluded_everywhere([])
    return {
        "security_defaults_enabled": tenant.security_defaults,
        "conditional_access_policies": len(tenant.policies) if tenant.readable else None,
        "not_counted": not_counted,
        "excluded_users": excluded["users"],
        "excluded_groups": excluded["groups"],
        "excluded_roles": excluded["roles"],
    }
