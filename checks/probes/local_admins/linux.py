"""local_admins on Linux: UID 0 and the sudo, wheel and admin groups (sudoers is root-only, not read)."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.local_admins.parse import parse_linux_admins
from checks.probes.registry import Facts, Params


def collect_local_admins_linux(host: Host, params: Params) -> Facts:
    return parse_linux_admins(host.read_text("/etc/passwd"), host.read_text("/etc/group"))
