"""local_admins on Windows: the members of Administrators, by its SID, and the built-in Administrator."""

from __future__ import annotations

from checks.probes.host import Host
from checks.probes.local_admins.parse import parse_windows_admins
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

WINDOWS_ADMINS_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$members = @(Get-LocalGroupMember -SID 'S-1-5-32-544' | Select-Object Name,
  @{n='ObjectClass';e={[string]$_.ObjectClass}}, @{n='PrincipalSource';e={[string]$_.PrincipalSource}},
  @{n='SID';e={[string]$_.SID}})
$builtin = Get-LocalUser | Where-Object { $_.SID.Value -like 'S-1-5-21-*-500' } | Select-Object -First 1
[pscustomobject]@{ Members = $members; BuiltinAdministratorEnabled = $(if ($builtin) { $builtin.Enabled }) } |
  ConvertTo-Json -Depth 3 -Compress
"""


def collect_local_admins_windows(host: Host, params: Params) -> Facts:
    return parse_windows_admins(powershell_json(host, WINDOWS_ADMINS_SCRIPT))
