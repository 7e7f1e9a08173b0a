"""firewall on macOS: the application firewall's global state and stealth mode."""

from __future__ import annotations

from checks.probes.common import raise_for_failure
from checks.probes.firewall.parse import parse_socketfilterfw
from checks.probes.host import Host
from checks.probes.registry import Facts, Params

SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"


def collect_firewall_darwin(host: Host, params: Params) -> Facts:
    state = host.run([SOCKETFILTERFW, "--getglobalstate"], timeout=30)
    raise_for_failure(state, "socketfilterfw --getglobalstate")
    stealth = host.run([SOCKETFILTERFW, "--getstealthmode"], timeout=30)
    return parse_socketfilterfw(state.stdout, stealth.stdout if stealth.ok else "")
