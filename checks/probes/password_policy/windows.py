"""password_policy on Windows: the local policy from the WinNT provider."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.password_policy.parse import parse_windows_password_policy
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

WINDOWS_PASSWORD_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$c = [ADSI]"WinNT://$env:COMPUTERNAME"
[pscustomobject]@{
  MinPasswordLength = [int]$c.MinPasswordLength.Value
  MaxPasswordAge = [int64]$c.MaxPasswordAge.Value
  MaxBadPasswordsAllowed = [int]$c.MaxBadPasswordsAllowed.Value
} | ConvertTo-Json -Compress
"""


def collect_password_policy_windows(host: Host, params: Params) -> Facts:
    return parse_windows_password_policy(powershell_json(host, WINDOWS_PASSWORD_SCRIPT))
