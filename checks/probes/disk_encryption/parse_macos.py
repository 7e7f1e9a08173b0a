"""disk_encryption's macOS parser: `fdesetup status` (FileVault covers the boot volume group)."""

from __future__ import annotations

import re

from checks.probes.disk_encryption.parse import summarise, volume
from checks.probes.host import ProbeError
from checks.probes.registry import Facts

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
