"""disk_encryption's Linux parsers: lsblk's device tree, /proc/self/mountinfo and /proc/swaps, and the
volumes they give (encrypted when every path down to the disks crosses a dm-crypt device)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from checks.probes.common import json_type
from checks.probes.disk_encryption.parse import summarise, volume
from checks.probes.host import ProbeError
from checks.probes.registry import Facts

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
