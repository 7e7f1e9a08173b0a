"""disk_encryption's Windows parser: BitLocker's volumes (Win32_EncryptableVolume) as our script prints them."""

from __future__ import annotations

from typing import Any

from checks.probes.disk_encryption.parse import summarise, volume
from checks.probes.host import ProbeError
from checks.probes.registry import Facts
from checks.probes.windows import as_objects

# GetConversionStatus: ConversionStatus values.
_CONVERSION = {
    0: "not_encrypted",  # FullyDecrypted
    1: "encrypted",  # FullyEncrypted
    2: "encrypting",  # EncryptionInProgress
    3: "decrypting",  # DecryptionInProgress
    4: "paused",  # EncryptionPaused
    5: "paused",  # DecryptionPaused
}
FVE_E_LOCKED_VOLUME = 2150694912  # 0x80310000, returned by GetConversionStatus on a locked volume


def parse_bitlocker(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Win32_EncryptableVolume returned nothing (is BitLocker available on this edition?)")
    system_drive = str(data.get("SystemDrive") or "C:").upper()
    notes: list[str] = []
    volumes: list[dict[str, Any]] = []
    for item in as_objects(data.get("Volumes"), "Win32_EncryptableVolume"):
        letter = str(item.get("DriveLetter") or "").upper()
        device = str(item.get("DeviceID") or letter)
        volume_type = item.get("VolumeType")
        if volume_type in (2, 3):  # portable or virtual data volume
            notes.append(f"{letter or device} left out: removable or virtual volume")
            continue
        kind = "system" if volume_type == 0 or (volume_type is None and letter == system_drive) else "data"
        mount = letter or device
        protection = item.get("ProtectionStatus")
        conversion = item.get("ConversionStatus")
        percent = item.get("EncryptionPercentage")
        if protection == 2 or item.get("ReturnValue") == FVE_E_LOCKED_VOLUME:
            # Locked: the volume is encrypted and its key protectors are in force.
            volumes.append(
                volume(mount, device, kind, encrypted=True, method="bitlocker", protection_on=True, status="locked")
            )
            continue
        status = _CONVERSION.get(conversion, "unknown") if isinstance(conversion, int) else "unknown"
        encrypted: bool | None = None if status == "unknown" else status != "not_encrypted"
        protection_on = protection == 1 if protection in (0, 1) else None
        if status == "encrypted" and protection == 0:
            status = "suspended"  # encrypted, but the key sits in clear on the disk
        volumes.append(
            volume(
                mount,
                device,
                kind,
                encrypted=encrypted,
                method="bitlocker" if encrypted else "none",
                protection_on=protection_on,
                status=status,
                percent=float(percent) if isinstance(percent, int | float) else None,
            )
        )
    return summarise(volumes, notes)
