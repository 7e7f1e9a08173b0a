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

Security defaults, when on, enforce MFA registration and challenge, block legacy authentication and
require MFA for administrators, and cannot coexist with conditional access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from checks.probes.cloud.common import cloud_collector, graph_items, lower_all
from checks.probes.cloud.context import CloudContext, CloudError
from checks.probes.cloud.directory import GROUP_MEMBER_READ, ROLE_READ, USER_READ, Directory, DirectoryUser
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register

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


def _part(policy: dict[str, Any], name: str) -> dict[str, Any]:
    value = _conditions(policy).get(name)
    return value if isinstance(value, dict) else {}


def summary(policy: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(policy.get("id") or ""), "name": str(policy.get("displayName") or "")}


def exclusions(policy: dict[str, Any]) -> dict[str, Any]:
    users = _part(policy, "users")
    return {
        "users": [str(u) for u in users.get("excludeUsers") or []],
        "groups": [str(g) for g in users.get("excludeGroups") or []],
        "roles": [str(r) for r in users.get("excludeRoles") or []],
        "guests_or_external_users": bool(users.get("excludeGuestsOrExternalUsers")),
        "locations": [str(loc) for loc in _part(policy, "locations").get("excludeLocations") or []],
        "platforms": [str(p) for p in _part(policy, "platforms").get("excludePlatforms") or []],
    }


def scope_gaps(policy: dict[str, Any], *, all_users: bool) -> list[str]:
    """Why a policy does not apply everywhere (empty when it does)."""
    gaps = []
    state = str(policy.get("state") or "")
    if state == "enabledForReportingButNotEnforced":
        gaps.append("report-only: it logs but does not enforce")
    elif state != "enabled":
        gaps.append(f"state is {state or 'unknown'}")
    users = _part(policy, "users")
    if all_users and "all" not in lower_all(users.get("includeUsers")):
        gaps.append("applies to selected users, groups or roles, not all users")
    if "all" not in lower_all(_part(policy, "applications").get("includeApplications")):
        gaps.append("applies to selected applications, not all")
    for key, label in (("userRiskLevels", "user risk"), ("signInRiskLevels", "sign-in risk")):
        levels = lower_all(_conditions(policy).get(key))
        if levels:
            gaps.append(f"applies only at {label} {', '.join(levels)}")
    locations = lower_all(_part(policy, "locations").get("includeLocations"))
    if locations and "all" not in locations:
        gaps.append("applies only in selected locations")
    platforms = lower_all(_part(policy, "platforms").get("includePlatforms"))
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


# --- probes ----------------------------------------------------------------------------------------------

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


def _sort_policies(
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
            not_counted.append(_not_counted(policy, gaps))
        else:
            counting.append(policy)
    return counting, not_counted


def _not_counted(policy: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    return {**summary(policy), "state": str(policy.get("state") or ""), "reasons": reasons}


def _covered_by(tenant: TenantPolicies, policies: list[dict[str, Any]]) -> list[str]:
    """What enforces it: security defaults and/or the policies, by name."""
    defaults = ["security defaults"] if tenant.security_defaults else []
    return defaults + [str(p.get("displayName") or p.get("id")) for p in policies]


def _counted(policy: dict[str, Any]) -> dict[str, Any]:
    return {**summary(policy), "exclusions": exclusions(policy)}


def _common(tenant: TenantPolicies, counting: list[dict[str, Any]], not_counted: list[dict[str, Any]]) -> Facts:
    excluded = excluded_everywhere(counting) if not tenant.security_defaults else excluded_everywhere([])
    return {
        "security_defaults_enabled": tenant.security_defaults,
        "conditional_access_policies": len(tenant.policies) if tenant.readable else None,
        "not_counted": not_counted,
        "excluded_users": excluded["users"],
        "excluded_groups": excluded["groups"],
        "excluded_roles": excluded["roles"],
    }


DIRECTORY_USER_FIELDS = (
    Field("id", "string", "User object id"),
    Field("user_principal_name", "string", "Sign-in name (empty when the app may not read it)"),
    Field("display_name", "string", "Display name"),
)
UNCOVERED_FIELDS = (
    *DIRECTORY_USER_FIELDS,
    Field("excluded_by", "array", "How: `user`, `group <name or id>`, `role <name or id>`", items="string"),
)
GAP_FIELDS = (
    Field("kind", "string", "user, group or role"),
    Field("id", "string", "Object id (role template id for a role)"),
    Field("name", "string", "Its name, when known"),
    Field("uncovered", "integer", "Users it leaves without MFA (not emergency accounts, excluded everywhere)"),
)

# Reading who exclusions leave out (only asked when a counting policy excludes someone).
EXCLUSION_PERMISSIONS = (
    f"{USER_READ}, {GROUP_MEMBER_READ} and {ROLE_READ} (Microsoft Graph application permissions) to read "
    "who excluded users, groups and roles are",
)

MFA_ENFORCEMENT = register(
    ProbeSpec(
        name="entra_mfa_enforcement",
        description="Whether MFA is enforced for all users: security defaults, or enabled conditional access "
        "policies for all users and all apps requiring MFA or an MFA authentication strength, excluding no "
        "one but the emergency accounts named in the collector's config",
        scope="tenant",
        permissions=PERMISSIONS + EXCLUSION_PERMISSIONS,
        facts=(
            Field("enforced", "boolean", "MFA is enforced for all users but the emergency accounts"),
            Field("enforced_by", "array", "`security defaults` or the names of the counting policies", items="string"),
            Field("policies", "array", "Conditional access policies that enforce MFA for all", fields=POLICY_FIELDS),
            Field(
                "uncovered_users",
                "array",
                f"Users every counting policy excludes, emergency accounts apart (first {MAX_LISTED_UNCOVERED})",
                fields=UNCOVERED_FIELDS,
            ),
            Field("uncovered_count", "integer", "How many users every counting policy excludes (exact)"),
            Field("uncovered_truncated", "boolean", "uncovered_users lists only the first of them"),
            Field(
                "exclusion_gaps",
                "array",
                "Exclusions that leave users other than emergency accounts out",
                fields=GAP_FIELDS,
            ),
            Field("emergency_accounts_excluded", "array", "Emergency accounts the policies exclude", items="string"),
            *COMMON_FACTS,
        ),
        example="""\
- id: mfa-enforced
  title: MFA is enforced for all users
  description: Security defaults or an enabled conditional access policy for all users and apps.
  rationale: MFA that users may skip protects nobody.
  remediation: Turn on security defaults, or enable a conditional access policy requiring MFA for all users.
  severity: critical
  platforms: [microsoft365]
  probe: entra_mfa_enforcement
  expect: {fact: enforced, eq: true}
""",
    )
)


@cloud_collector(MFA_ENFORCEMENT, "microsoft365")
def collect_mfa_enforcement(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = _sort_policies(tenant, lambda p: mfa_gaps(p, all_users=True))
    enforced_by = _covered_by(tenant, counting)
    # Security defaults have no exclusions; conditional access policies may.
    gaps = (
        Gaps() if tenant.security_defaults else uncovered_by(Directory(context), counting, context.emergency_accounts)
    )
    return {
        "enforced": bool(enforced_by) and not gaps.uncovered,
        "enforced_by": enforced_by,
        "policies": [_counted(p) for p in counting],
        "uncovered_users": [entry.fact() for entry in gaps.uncovered[:MAX_LISTED_UNCOVERED]],
        "uncovered_count": len(gaps.uncovered),
        "uncovered_truncated": len(gaps.uncovered) > MAX_LISTED_UNCOVERED,
        "exclusion_gaps": gaps.exclusions,
        "emergency_accounts_excluded": gaps.emergency,
        **_common(tenant, counting, not_counted),
    }


@dataclass(frozen=True)
class Exclusion:
    """One excluded principal of a counting policy."""

    kind: str  # user, group or role
    id: str
    name: str = ""

    def label(self) -> str:
        return "user" if self.kind == "user" else f"{self.kind} {self.name or self.id}"


@dataclass
class Uncovered:
    user: DirectoryUser
    excluded_by: set[Exclusion]

    def fact(self) -> dict[str, Any]:
        return {**self.user.as_fact(), "excluded_by": sorted({e.label() for e in self.excluded_by})}


@dataclass
class Gaps:
    uncovered: list[Uncovered] = field(default_factory=list)  # by sign-in name, then id
    exclusions: list[dict[str, Any]] = field(default_factory=list)
    emergency: list[str] = field(default_factory=list)


Excluded = dict[str, tuple[DirectoryUser, set[Exclusion]]]  # lower-cased user id -> (user, how)


def _excluded_users(directory: Directory, policy: dict[str, Any]) -> Excluded:
    """The users one policy leaves out, each with the exclusions that leave them out."""
    users = _part(policy, "users")
    found: Excluded = {}

    def add(user: DirectoryUser, how: Exclusion) -> None:
        known, ways = found.setdefault(user.id.lower(), (user, set()))
        ways.add(how)
        if user.user_principal_name and not known.user_principal_name:
            found[user.id.lower()] = (user, ways)

    for user_id in [str(u) for u in users.get("excludeUsers") or []]:
        if user_id.lower() not in SPECIAL_USERS:
            add(DirectoryUser(user_id, "", ""), Exclusion("user", user_id))
    for group_id in [str(g) for g in users.get("excludeGroups") or []]:
        name, members = directory.group(group_id)
        for member in members:
            add(member, Exclusion("group", group_id, name))
    for role_id in [str(r) for r in users.get("excludeRoles") or []]:
        for holder in directory.role(role_id):
            add(holder, Exclusion("role", role_id, ADMIN_ROLES.get(role_id.lower(), "")))
    return found


def uncovered_by(directory: Directory, counting: list[dict[str, Any]], emergency_accounts: tuple[str, ...]) -> Gaps:
    """The users every counting policy leaves out, less the emergency accounts, and the exclusions that
    leave them out. A user one policy excludes and another covers is covered."""
    if not counting:
        return Gaps()
    per_policy = [_excluded_users(directory, policy) for policy in counting]
    everywhere = set.intersection(*(set(excluded) for excluded in per_policy))
    emergency = {account.strip().lower() for account in emergency_accounts}
    gaps = Gaps()
    emergency_seen: set[str] = set()
    for key in sorted(everywhere):
        how: set[Exclusion] = set()
        user = per_policy[0][key][0]
        for excluded in per_policy:
            candidate, ways = excluded[key]
            how |= ways
            user = user if user.user_principal_name else candidate
        if key in emergency:
            emergency_seen.add(user.user_principal_name or user.id)
            continue
        if not user.user_principal_name:  # excluded by id alone: who is it, and does it still exist?
            looked_up = directory.user(user.id)
            if looked_up is None:
                continue  # deleted: it leaves no one out
            user = looked_up
        if user.user_principal_name.lower() in emergency:
            emergency_seen.add(user.user_principal_name)
            continue
        gaps.uncovered.append(Uncovered(user, how))
    gaps.uncovered.sort(key=lambda u: (u.user.user_principal_name.lower(), u.user.id))
    gaps.emergency = sorted(emergency_seen)
    counts: dict[Exclusion, int] = {}
    names: dict[Exclusion, str] = {}
    for entry in gaps.uncovered:
        for exclusion in entry.excluded_by:
            counts[exclusion] = counts.get(exclusion, 0) + 1
            if exclusion.kind == "user":
                names[exclusion] = entry.user.user_principal_name or entry.user.display_name
    gaps.exclusions = [
        {"kind": e.kind, "id": e.id, "name": names.get(e, e.name), "uncovered": n}
        for e, n in sorted(counts.items(), key=lambda item: (item[0].kind, item[0].id))
    ]
    return gaps


LEGACY_AUTH = register(
    ProbeSpec(
        name="entra_legacy_auth",
        description="Whether legacy authentication (Exchange ActiveSync and other legacy clients, which cannot "
        "do MFA) is blocked by security defaults or an enabled conditional access policy for all users",
        scope="tenant",
        permissions=PERMISSIONS,
        facts=(
            Field("blocked", "boolean", "Legacy authentication is blocked for all users"),
            Field("blocked_by", "array", "`security defaults` or the names of the blocking policies", items="string"),
            Field("policies", "array", "Conditional access policies that block legacy clients", fields=POLICY_FIELDS),
            *COMMON_FACTS,
        ),
        example="""\
- id: legacy-auth-blocked
  title: Legacy authentication is blocked
  description: Security defaults or an enabled conditional access policy blocking legacy clients.
  rationale: Legacy protocols cannot do MFA, so password spraying against them bypasses it.
  remediation: Enable a conditional access policy blocking Exchange ActiveSync and other clients for all users.
  severity: high
  platforms: [microsoft365]
  probe: entra_legacy_auth
  expect: {fact: blocked, eq: true}
""",
    )
)


@cloud_collector(LEGACY_AUTH, "microsoft365")
def collect_legacy_auth(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = _sort_policies(tenant, legacy_block_gaps)
    blocked_by = _covered_by(tenant, counting)
    return {
        "blocked": bool(blocked_by),
        "blocked_by": blocked_by,
        "policies": [_counted(p) for p in counting],
        **_common(tenant, counting, not_counted),
    }


ROLE_FIELDS = (
    Field("id", "string", "Role template id"),
    Field("name", "string", "Role name (when known)"),
    Field("covered_by", "array", "`security defaults` or the policies requiring MFA for it", items="string"),
)

ADMIN_MFA = register(
    ProbeSpec(
        name="entra_admin_mfa",
        description="Whether every privileged directory role must use MFA (security defaults, or enabled "
        "conditional access policies for those roles and all apps requiring MFA)",
        scope="tenant",
        permissions=PERMISSIONS,
        params=(
            Field(
                "roles",
                "array",
                "Role template ids that must require MFA (default: the 14 roles of Microsoft's "
                "'require MFA for administrators' template)",
                items="string",
                required=False,
                default=list(ADMIN_ROLES),
            ),
        ),
        facts=(
            Field("required", "boolean", "Every listed role must use MFA"),
            Field("covered_roles", "array", "Roles that must use MFA, and by what", fields=ROLE_FIELDS),
            Field("uncovered_roles", "array", "Roles no counting policy covers", fields=ROLE_FIELDS),
            *COMMON_FACTS,
        ),
        example="""\
- id: admin-mfa-required
  title: Administrators must use MFA
  description: Every privileged role is covered by security defaults or a conditional access policy requiring MFA.
  rationale: An administrator account without MFA is the quickest way to take over a tenant.
  remediation: Enable a conditional access policy requiring MFA for the administrator roles.
  severity: critical
  platforms: [microsoft365]
  probe: entra_admin_mfa
  expect: {fact: uncovered_roles, count: {eq: 0}}
""",
    )
)


@cloud_collector(ADMIN_MFA, "microsoft365")
def collect_admin_mfa(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = _sort_policies(tenant, lambda p: mfa_gaps(p, all_users=False))
    covered: list[dict[str, Any]] = []
    uncovered: list[dict[str, Any]] = []
    used: dict[int, dict[str, Any]] = {}
    for role in [str(r) for r in params["roles"]]:
        covering: list[dict[str, Any]] = []
        for index, policy in enumerate(counting):
            users = _part(policy, "users")
            included = "all" in lower_all(users.get("includeUsers")) or role.lower() in lower_all(
                users.get("includeRoles")
            )
            if included and role.lower() not in lower_all(users.get("excludeRoles")):
                covering.append(policy)
                used[index] = policy
        by = _covered_by(tenant, covering)
        entry = {"id": role, "name": ADMIN_ROLES.get(role.lower(), ""), "covered_by": by}
        (covered if by else uncovered).append(entry)
    relevant = [used[index] for index in sorted(used)]
    return {
        "required": not uncovered,
        "covered_roles": covered,
        "uncovered_roles": uncovered,
        **_common(tenant, relevant, not_counted),
    }
