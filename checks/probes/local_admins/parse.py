"""local_admins' pure parsers: /etc/passwd and /etc/group, Get-LocalGroupMember's JSON, dscl's listing."""

from __future__ import annotations

from typing import Any

from checks.probes.host import ProbeError
from checks.probes.registry import Facts
from checks.probes.windows import as_list

LINUX_ADMIN_GROUPS = ("sudo", "wheel", "admin")


def _number(text: str) -> bool:
    # isdigit() alone takes any Unicode digit ('²'), which int() refuses.
    return text.isascii() and text.isdigit()


def parse_linux_admins(passwd: str, group: str) -> Facts:
    users: dict[str, tuple[int, int]] = {}
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and _number(parts[2]) and _number(parts[3]):
            users[parts[0]] = (int(parts[2]), int(parts[3]))
    admins: list[dict[str, str]] = []
    seen: set[str] = set()
    for name, (uid, _) in sorted(users.items()):
        if uid == 0:
            admins.append({"name": name, "via": "uid0", "kind": "user"})
            seen.add(name)
    for line in group.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or parts[0] not in LINUX_ADMIN_GROUPS or not _number(parts[2]):
            continue
        gid = int(parts[2])
        members = {m for m in parts[3].split(",") if m}
        members |= {u for u, (_, primary) in users.items() if primary == gid}
        for member in sorted(members - seen):
            admins.append({"name": member, "via": parts[0], "kind": "user"})
            seen.add(member)
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": sorted(u for u, (uid, _) in users.items() if uid == 0 and u != "root"),
        "builtin_admin_enabled": None,
        "notes": ["sudoers rules are not read (root-only): only the sudo, wheel and admin groups and UID 0 count"],
    }


def parse_windows_admins(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Get-LocalGroupMember returned nothing")
    admins = []
    for member in as_list(data.get("Members")):
        object_class = str(member.get("ObjectClass") or "").lower()
        # ObjectClass is localised too ("Benutzer", "Gruppe"); the SID says a group when it is a builtin alias.
        kind = (
            "group"
            if object_class in ("group", "gruppe", "groupe", "grupo")
            else ("user" if object_class in ("user", "benutzer", "utilisateur", "usuario") else "unknown")
        )
        admins.append({"name": str(member.get("Name")), "via": "Administrators (S-1-5-32-544)", "kind": kind})
    enabled = data.get("BuiltinAdministratorEnabled")
    return {
        "admins": admins,
        "count": len(admins),
        "uid0_accounts": [],
        "builtin_admin_enabled": enabled if isinstance(enabled, bool) else None,
        "notes": ["members of nested domain groups are not expanded"],
    }


def parse_dscl_group_membership(text: str) -> list[str]:
    """`dscl . -read /Groups/admin GroupMembership` -> member names (the value may wrap onto a new line)."""
    _, _, value = text.partition("GroupMembership:")
    return value.split()
