"""os_support on Linux: the os probe's os-release facts against the table."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.os.linux import collect_os_linux
from checks.probes.os_support.parse import judge_support, linux_cycle, today
from checks.probes.registry import Facts, Params


def collect_os_support_linux(host: Host, params: Params) -> Facts:
    os_facts = collect_os_linux(host, {})
    product, cycle = linux_cycle(os_facts["id"], os_facts["id_like"], os_facts["version"])
    return judge_support(os_facts["name"], product, cycle, today())
