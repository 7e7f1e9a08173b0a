"""os_support on macOS: the sw_vers version against the table."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.os.darwin import collect_os_darwin
from checks.probes.os_support.parse import judge_support, macos_cycle, today
from checks.probes.registry import Facts, Params


def collect_os_support_darwin(host: Host, params: Params) -> Facts:
    os_facts = collect_os_darwin(host, {})
    return judge_support(os_facts["name"], "macos", macos_cycle(os_facts["version"]), today())
