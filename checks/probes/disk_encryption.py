"""Disk encryption per volume: the system volume, fixed data volumes and (Linux) swap.

A volume is compliant only when it is fully encrypted *and* the protection is in force: BitLocker with
protection suspended, or still encrypting, is not compliant; neither is FileVault "encryption in progress".
On Linux a mounted filesystem is encrypted when every path from it down to the disks passes through a
dm-crypt device, so LVM on LUKS counts and an LVM volume group spanning one plain disk does not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from checks.probes.common import json_type, raise_for_failure, read_optional
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register
from checks.probes.windows import as_objects, powershell_json

VOLUME_FIELDS = (
    Field("mount", "string", "Mount point, drive letter or swap device"),
    Field("device", "string", "Device (kernel name, BitLocker device id)"),
    Field("kind", "string", "system, data or swap", enum=("system", "data", "swap")),
    Field("encrypted", "boolean", "The data on the volume is encrypted (fully or partly)", nullable=True),
    Field("method", "string", "luks, dm-crypt, bitlocker, filevault or none", nullable=True),
    Field(
        "protection_on", "boolean", "The encryption key is protected (not suspended or stored in clear)", nullable=True
    ),
    Field(
        "status",
        "string",
        "encrypted, not_encrypted, encrypting, decrypting, paused, suspended, locked or unknown",
    ),
    Field("percent", "number", "Percentage encrypted, where the platform reports it", nullable=True),
    Field("compliant", "boolean", "Fully encrypted with protection on", nullable=True),
)

DISK_ENCRYPTION = register(
    ProbeSpec(
        name="disk_encryption",
        description="Encryption of each fixed volume (system, data, swap): LUKS/dm-crypt including LVM on LUKS, "
        "BitLocker (protection and conversion status), FileVault",
        facts=(
            Field("volumes", "array", "One entry per fixed volume", fields=VOLUME_FIELDS),
            Field("system_encrypted", "boolean", "The system volume is compliant", nullable=True),
            Field("noncompliant", "array", "Mounts of the volumes that are not compliant", items="string"),
            Field("notes", "array", "Volumes left out and why; caveats", items="string"),
        ),
        example="""\
- id: disks-encrypted
  title: Every fixed disk volume is encrypted
  description: Checks the system volume, fixed data volumes and swap.
  rationale: A lost or stolen device must not give away the data on it.
  remediation: Turn on BitLocker/FileVault, or install Linux on LUKS; let encryption finish.
  severity: high
  probe: disk_encryption
  expect:
    all:
      - {fact: volumes, count: {gte: 1}}
      - {fact: volumes, every_item: {fact: compliant, eq: true}}
""",
    )
)


def summarise(volumes: list[dict[str, Any]], notes: list[str]) -> Facts:
    system = [v for v in volumes if v["kind"] == "system"]
    return {
        "volumes": volumes,
        "system_encrypted": system[0]["compliant"] if system else None,
        "noncompliant": [v["mount"] for v in volumes if v["compliant"] is False],
        "notes": notes,
    }


def volume(
    mount: str,
    device: str,
    kind: str,
    *,
    encrypted: bool | None,
    method: str | None,
    protection_on: bool | None,
    status: str,
    percent: float | None = None,
) -> dict[str, Any]:
    compliant: bool | None
    if status in ("unknown",) or encrypted is None:
        compliant = None
    else:
        compliant = bool(encrypted and protection_on and status in ("encrypted", "locked"))
    return {
        "mount": mount,
        "device": device,
        "kind": kind,
        "encrypted": encrypted,
        "method": method,
        "protection_on": protection_on,
        "status": status,
        "percent": percent,
        "compliant": compliant,
    }


# --- Linux ---------------------------------------------------------------------------------------------

LSBLK_ARGV = ["lsblk", "-J", "-o", "NAME,KNAME,PKNAME,MAJ:MIN,TYPE,FSTYPE,RM"]

# Filesystems that hold no user data on a disk of their own, or are not disk-backed.
_SKIP_MOUNTS = ("/boot", "/boot/efi", "/efi")
_MEMORY_DEVICES = ("zram", "ram", "loop")


@dataclass
class BlockDevice:
    kname: str
    name: str
    type: str
    fstype: str | None
    removable: bool
    majmin: str
    parent_paths: list[list[BlockDevice]] = field(default_factory=list)  # each path: nearest parent first


def _json_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProbeError(f"lsblk output: {key!r} is not an array but {json_type(value)}")
    return value


def parse_lsblk(text: str) -> dict[str, BlockDevice]:
    """Index lsblk's device tree by kernel name, recording every path from each device down to its disks.

    In tree output a device with several parents (an LV spanning PVs, a RAID member) appears under each of
    them, so collecting the ancestors of every appearance gives all its paths.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"lsblk output is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProbeError(f"lsblk output is not a JSON object but {json_type(data)}")
    devices: dict[str, BlockDevice] = {}

    def visit(node: Any, ancestors: list[BlockDevice]) -> None:
        if not isinstance(node, dict):
            raise ProbeError(f"lsblk listed a device that is not a JSON object but {json_type(node)}")
        kname = str(node.get("kname") or node.get("name"))
        device = devices.get(kname)
        if device is None:
            removable = node.get("rm")
            device = BlockDevice(
                kname=kname,
                name=str(node.get("name") or kname),
                type=str(node.get("type") or ""),
                fstype=node.get("fstype"),
                removable=removable in (True, "1", 1),
                majmin=str(node.get("maj:min") or ""),
            )
            devices[kname] = device
        device.parent_paths.append(list(reversed(ancestors)))
        for child in _json_list(node.get("children"), "children"):
            visit(child, [*ancestors, device])

    for root in _json_list(data.get("blockdevices"), "blockdevices"):
        visit(root, [])
    return devices


def encryption_of(device: BlockDevice) -> tuple[bool, str | None]:
    """(encrypted, method): encrypted when every path from the device to a disk crosses a crypt device."""
    methods: list[str] = []
    for path in device.parent_paths:
        chain = [device, *path]
        crypt_index = next((i for i, d in enumerate(chain) if d.type == "crypt"), None)
        if crypt_index is None:
            return False, None
        below = chain[crypt_index + 1] if crypt_index + 1 < len(chain) else None
        methods.append("luks" if below is not None and below.fstype == "crypto_LUKS" else "dm-crypt")
    return True, ("luks" if methods and all(m == "luks" for m in methods) else "dm-crypt")


@dataclass(frozen=True)
class Mount:
    majmin: str
    root: str
    mountpoint: str
    fstype: str
    source: str


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mountpoint = fields[4].replace("\\040", " ")
        mounts.append(Mount(fields[2], fields[3], mountpoint, tail[0], tail[1]))
    return mounts


def parse_swaps(text: str) -> list[tuple[str, str]]:
    """(path, type) of the active swap areas in /proc/swaps."""
    swaps = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            swaps.append((parts[0].replace("\\040", " "), parts[1]))
    return swaps


def _device_for(mount: Mount, devices: dict[str, BlockDevice]) -> BlockDevice | None:
    by_majmin = next((d for d in devices.values() if d.majmin == mount.majmin), None)
    if by_majmin is not None:
        return by_majmin
    # btrfs reports an anonymous 0:N device; its source names the block device instead.
    source = mount.source
    name = source.rsplit("/", 1)[-1]
    if source.startswith("/dev/mapper/"):
        return next((d for d in devices.values() if d.name == name), None)
    if source.startswith("/dev/"):
        return devices.get(name) or next((d for d in devices.values() if d.name == name), None)
    return None


def linux_volumes(lsblk_json: str, mountinfo: str, swaps: str) -> Facts:
    devices = parse_lsblk(lsblk_json)
    notes: list[str] = []
    volumes: list[dict[str, Any]] = []
    mounts = parse_mountinfo(mountinfo)
    seen: set[str] = set()
    for mount in sorted(mounts, key=lambda m: (m.root != "/", len(m.mountpoint))):
        device = _device_for(mount, devices)
        if device is None or device.kname in seen and mount.mountpoint != "/":
            continue
        if mount.mountpoint in _SKIP_MOUNTS or mount.mountpoint.startswith(("/boot/", "/snap/")):
            notes.append(f"{mount.mountpoint} ({device.kname}) left out: boot files are not encrypted by design")
            continue
        if device.removable or device.kname.startswith(_MEMORY_DEVICES) or mount.fstype in ("squashfs", "iso9660"):
            notes.append(f"{mount.mountpoint} ({device.kname}) left out: removable, read-only image or in memory")
            continue
        seen.add(device.kname)
        encrypted, method = encryption_of(device)
        volumes.append(
            volume(
                mount.mountpoint,
                device.kname,
                "system" if mount.mountpoint == "/" else "data",
                encrypted=encrypted,
                method=method or "none",
                protection_on=encrypted,
                status="encrypted" if encrypted else "not_encrypted",
            )
        )
    for path, kind in parse_swaps(swaps):
        if kind == "file":
            holder = max(
                (m for m in mounts if path.startswith(m.mountpoint.rstrip("/") + "/")),
                key=lambda m: len(m.mountpoint),
                default=None,
            )
            device = _device_for(holder, devices) if holder else None
        else:
            device = devices.get(path.rsplit("/", 1)[-1]) or next(
                (d for d in devices.values() if path == f"/dev/mapper/{d.name}"), None
            )
        if device is None:
            volumes.append(
                volume(path, path, "swap", encrypted=None, method=None, protection_on=None, status="unknown")
            )
            notes.append(f"swap {path}: its device is not in lsblk's list")
            continue
        if device.kname.startswith(("zram", "ram")):
            notes.append(f"swap {path} is compressed memory ({device.kname}), never written to disk")
            continue
        encrypted, method = encryption_of(device)
        volumes.append(
            volume(
                path,
                device.kname,
                "swap",
                encrypted=encrypted,
                method=method or "none",
                protection_on=encrypted,
                status="encrypted" if encrypted else "not_encrypted",
            )
        )
    if not any(v["kind"] == "system" for v in volumes):
        notes.append("the root filesystem is not on a block device lsblk knows (container or network root)")
    return summarise(volumes, notes)


@DISK_ENCRYPTION.collector("linux")
def collect_disk_encryption_linux(host: Host, params: Params) -> Facts:
    listing = host.run(LSBLK_ARGV, timeout=30)
    raise_for_failure(listing, "lsblk")
    mountinfo = host.read_text("/proc/self/mountinfo")
    swaps = read_optional(host, "/proc/swaps") or ""
    return linux_volumes(listing.stdout, mountinfo, swaps)


# --- Windows: BitLocker --------------------------------------------------------------------------------

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


@DISK_ENCRYPTION.collector("windows")
def collect_disk_encryption_windows(host: Host, params: Params) -> Facts:
    return parse_bitlocker(powershell_json(host, BITLOCKER_SCRIPT))


# --- macOS: FileVault ----------------------------------------------------------------------------------

_PROGRESS = re.compile(r"(Encryption|Decryption) in progress:\s*(?:Percent completed = ([\d.]+)|(\w+))", re.I)


def parse_fdesetup_status(text: str) -> Facts:
    """`fdesetup status`: FileVault covers the boot volume group (System and Data volumes)."""
    lower = text.lower()
    progress = _PROGRESS.search(text)
    percent: float | None = None
    if progress:
        status = "encrypting" if progress.group(1).lower() == "encryption" else "decrypting"
        percent = float(progress.group(2)) if progress.group(2) else None
        encrypted: bool | None = True
    elif "filevault is on" in lower:
        status, encrypted = "encrypted", True
    elif "filevault is off" in lower:
        status, encrypted = "not_encrypted", False
    else:
        raise ProbeError(f"unrecognised fdesetup output: {text.strip()[:200]!r}")
    notes = []
    if "deferred enablement" in lower:
        notes.append("FileVault is set to turn on at the next login (deferred enablement); not encrypted yet")
    if "restart" in lower and status == "encrypted":
        status = "unknown"
        notes.append("FileVault needs a restart to finish turning on")
    vol = volume(
        "/",
        "boot volume group",
        "system",
        encrypted=encrypted,
        method="filevault" if encrypted else "none",
        protection_on=encrypted if status != "unknown" else None,
        status=status,
        percent=percent,
    )
    return summarise([vol], notes)


@DISK_ENCRYPTION.collector("darwin")
def collect_disk_encryption_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["fdesetup", "status"], timeout=30)
    # Exit status 2 means "busy": encryption or decryption in progress; the text says which.
    raise_for_failure(result, "fdesetup status", ok_codes=(0, 2))
    return parse_fdesetup_status(result.stdout)
