"""os_support on Windows: Win32_OperatingSystem's caption and build against the table."""

from __future__ import annotations

from checks.probes.host import Host, ProbeError
from checks.probes.os.parse import parse_windows_os
from checks.probes.os.windows import WINDOWS_OS_SCRIPT
from checks.probes.os_support.parse import judge_support, today, windows_cycle
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json


def collect_os_support_windows(host: Host, params: Params) -> Facts:
    data = powershell_json(host, WINDOWS_OS_SCRIPT)
    os_facts = parse_windows_os(data)
    if not isinstance(data, dict):
        raise ProbeError("Win32_OperatingSystem returned nothing")
    product, cycle = windows_cycle(str(data.get("Caption", "")), str(data.get("BuildNumber", "")))
    return judge_support(os_facts["name"], product, cycle, today())
