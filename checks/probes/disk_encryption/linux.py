"""disk_encryption on Linux: lsblk's device tree against the mounts and the active swap."""

from __future__ import annotations

from checks.probes.common import raise_for_failure, read_optional
from checks.probes.disk_encryption.parse_linux import linux_volumes
from checks.probes.host import Host
from checks.probes.registry import Facts, Params

LSBLK_ARGV = ["lsblk", "-J", "-o", "NAME,KNAME,PKNAME,MAJ:MIN,TYPE,FSTYPE,RM"]


def collect_disk_encryption_linux(host: Host, params: Params) -> Facts:
    listing = host.run(LSBLK_ARGV, timeout=30)
    raise_for_failure(listing, "lsblk")
    mountinfo = host.read_text("/proc/self/mountinfo")
    swaps = read_optional(host, "/proc/swaps") or ""
    return linux_volumes(listing.stdout, mountinfo, swaps)
