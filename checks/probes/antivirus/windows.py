"""antivirus on Windows: Defender's status and the products registered with the Security Center."""

from __future__ import annotations

import time

from checks.probes.antivirus.parse import parse_windows_antivirus
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

WINDOWS_AV_SCRIPT = r"""
$status = $null; $defenderError = $null
try {
  $status = Get-MpComputerStatus -ErrorAction Stop | Select-Object AMServiceEnabled, AntivirusEnabled,
    RealTimeProtectionEnabled, AntivirusSignatureAge, AntivirusSignatureVersion,
    @{n='AntivirusSignatureLastUpdated';e={
      if ($_.AntivirusSignatureLastUpdated) { $_.AntivirusSignatureLastUpdated.ToUniversalTime().ToString('o') } }},
    IsTamperProtected, AMRunningMode
} catch { $defenderError = $_.Exception.Message }
$products = @(Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct -EA SilentlyContinue |
  Select-Object displayName, productState)
[pscustomobject]@{ Defender = $status; DefenderError = $defenderError; Products = $products } |
  ConvertTo-Json -Depth 3 -Compress
"""


def collect_antivirus_windows(host: Host, params: Params) -> Facts:
    return parse_windows_antivirus(powershell_json(host, WINDOWS_AV_SCRIPT), time.time())
