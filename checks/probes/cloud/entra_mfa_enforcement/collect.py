"""Is MFA enforced for everyone: the counting policies, and who their exclusions leave out.

A user excluded from every counting policy and not an emergency account is uncovered; excluded groups
and roles are expanded to their users through the directory (checks/probes/cloud/directory.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.probes.cloud.conditional_access import (
    ADMIN_ROLES,
    MAX_LISTED_UNCOVERED,
    SPECIAL_USERS,
    common_facts,
    counted,
    covered_by,
    mfa_gaps,
    part,
    read_policies,
    sort_policies,
)
from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.directory import Directory, DirectoryUser
from checks.probes.registry import Facts, Params


def collect_mfa_enforcement(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = sort_policies(tenant, lambda p: mfa_gaps(p, all_users=True))
    enforced_by = covered_by(tenant, counting)
    # Security defaults have no exclusions; conditional access policies may.
    gaps = (
        Gaps() if tenant.security_defaults else uncovered_by(Directory(context), counting, context.emergency_accounts)
    )
    return {
        "enforced": bool(enforced_by) and not gaps.uncovered,
        "enforced_by": enforced_by,
        "policies": [counted(p) for p in counting],
        "uncovered_users": [entry.fact() for entry in gaps.uncovered[:MAX_LISTED_UNCOVERED]],
        "uncovered_count": len(gaps.uncovered),
        "uncovered_truncated": len(gaps.uncovered) > MAX_LISTED_UNCOVERED,
        "exclusion_gaps": gaps.exclusions,
        "emergency_accounts_excluded": gaps.emergency,
        **common_facts(tenant, counting, not_counted),
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
    users = part(policy, "users")
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
