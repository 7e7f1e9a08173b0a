"""firewall on Windows: each profile from the ActiveStore, and the firewall service."""

from __future__ import annotations

from checks.probes.firewall.parse import parse_windows_firewall
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

WINDOWS_FIREWALL_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$profiles = @(Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,
  @{n='Enabled';e={[string]$_.Enabled}}, @{n='DefaultInboundAction';e={[string]$_.DefaultInboundAction}})
$categories = @(Get-NetConnectionProfile -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.NetworkCategory })
[pscustomobject]@{
  Profiles = $profiles
  ActiveCategories = $categories
  Service = [string](Get-Service -Name MpsSvc).Status
} | ConvertTo-Json -Depth 3 -Compress
"""


def collect_firewall_windows(host: Host, params: Params) -> Facts:
    return parse_windows_firewall(powershell_json(host, WINDOWS_FIREWALL_SCRIPT))
