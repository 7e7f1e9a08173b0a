"""disk_encryption on Windows: BitLocker's protection and conversion status of each volume."""

from __future__ import annotations

from checks.probes.disk_encryption.parse_windows import parse_bitlocker
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.windows import powershell_json

BITLOCKER_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$volumes = Get-CimInstance -Namespace 'root/CIMV2/Security/MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume
$out = @(foreach ($v in $volumes) {
  $c = Invoke-CimMethod -InputObject $v -MethodName GetConversionStatus
  [pscustomobject]@{
    DriveLetter = $v.DriveLetter
    DeviceID = $v.DeviceID
    VolumeType = $v.VolumeType
    ProtectionStatus = $v.ProtectionStatus
    ConversionStatus = $c.ConversionStatus
    EncryptionPercentage = $c.EncryptionPercentage
    EncryptionMethod = $v.EncryptionMethod
    ReturnValue = $c.ReturnValue
  }
})
[pscustomobject]@{ SystemDrive = $env:SystemDrive; Volumes = $out } | ConvertTo-Json -Depth 3 -Compress
"""


def collect_disk_encryption_windows(host: Host, params: Params) -> Facts:
    return parse_bitlocker(powershell_json(host, BITLOCKER_SCRIPT))
