"""local_admins on macOS: the members of the admin group (dscl)."""

from __future__ import annotations

from checks.probes.common import raise_for_failure
from checks.probes.host import Host
from checks.probes.local_admins.parse import parse_dscl_group_membership
from checks.probes.registry import Facts, Params


def collect_local_admins_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["dscl", ".", "-read", "/Groups/admin", "GroupMembership"], timeout=30)
    raise_for_failure(result, "dscl . -read /Groups/admin")
    members = parse_dscl_group_membership(result.stdout)
    admins = [{"name": m, "via": "admin", "kind": "user"} for m in members]
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": [],
        "builtin_admin_enabled": None,
        "notes": ["members of nested groups (NestedGroups) are not expanded"],
    }
