"""disk_encryption on macOS: FileVault (`fdesetup status`)."""

from __future__ import annotations

from checks.probes.common import raise_for_failure
from checks.probes.disk_encryption.parse_macos import parse_fdesetup_status
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_disk_encryption_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["fdesetup", "status"], timeout=30)
    # Exit status 2 means "busy": encryption or decryption in progress; the text says which.
    raise_for_failure(result, "fdesetup status", ok_codes=(0, 2))
    return parse_fdesetup_status(result.stdout)
