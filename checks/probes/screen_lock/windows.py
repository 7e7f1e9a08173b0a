"""screen_lock on Windows: the machine inactivity limit (Interactive logon policy, in the registry)."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.screen_lock.parse import parse_windows_screen_lock
from checks.probes.windows import powershell_json

WINDOWS_SCREEN_LOCK_SCRIPT = r"""
$key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
$value = (Get-ItemProperty -Path $key -Name InactivityTimeoutSecs -ErrorAction SilentlyContinue).InactivityTimeoutSecs
[pscustomobject]@{ InactivityTimeoutSecs = $value } | ConvertTo-Json -Compress
"""


def collect_screen_lock_windows(host: Host, params: Params) -> Facts:
    return parse_windows_screen_lock(powershell_json(host, WINDOWS_SCREEN_LOCK_SCRIPT))
