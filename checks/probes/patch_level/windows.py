"""patch_level on Windows: the Windows Update Agent, offline (what its last scan found; no new scan)."""

from __future__ import annotations

import time

from checks.probes.host import Host
from checks.probes.patch_level.parse_windows import parse_windows_update
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

WINDOWS_UPDATE_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$session = New-Object -ComObject Microsoft.Update.Session
$searcher = $session.CreateUpdateSearcher()
$searcher.Online = $false
$found = $searcher.Search("IsInstalled=0 and IsHidden=0 and Type='Software'")
$updates = @(foreach ($u in $found.Updates) {
  [pscustomobject]@{
    Title = $u.Title
    KB = @($u.KBArticleIDs)
    MsrcSeverity = $u.MsrcSeverity
    CategoryIDs = @(foreach ($c in $u.Categories) { $c.CategoryID })
    Released = $u.LastDeploymentChangeTime.ToUniversalTime().ToString('o')
  }
})
$results = (New-Object -ComObject Microsoft.Update.AutoUpdate).Results
function Utc($d) { if ($d) { ([datetime]$d).ToUniversalTime().ToString('o') } }
[pscustomobject]@{
  Updates = $updates
  LastSearchSuccessDate = Utc $results.LastSearchSuccessDate
  LastInstallationSuccessDate = Utc $results.LastInstallationSuccessDate
  RebootRequired = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
} | ConvertTo-Json -Depth 4 -Compress
"""


def collect_patch_level_windows(host: Host, params: Params) -> Facts:
    now = time.time()
    return parse_windows_update(powershell_json(host, WINDOWS_UPDATE_SCRIPT, timeout=300), now).facts(now)
