"""os on Windows: Win32_OperatingSystem."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.os.parse import parse_windows_os
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

# Also read by os_support, which judges the caption and build against its table.
WINDOWS_OS_SCRIPT = (
    "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber,OSArchitecture,"
    "CSName,ProductType | ConvertTo-Json -Compress"
)


def collect_os_windows(host: Host, params: Params) -> Facts:
    data = powershell_json(host, WINDOWS_OS_SCRIPT)
    return parse_windows_os(data)
