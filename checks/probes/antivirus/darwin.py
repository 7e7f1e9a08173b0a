"""antivirus on macOS: XProtect, always on; the age of its signatures is that of its bundle."""

from __future__ import annotations

import time

from checks.probes.antivirus.parse import antivirus_facts, parse_plist_version
from checks.probes.common import whole_days
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params

XPROTECT_PLISTS = (
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
)


def collect_antivirus_darwin(host: Host, params: Params) -> Facts:
    now = time.time()
    for path in XPROTECT_PLISTS:
        info = host.stat(path)
        if info is None:
            continue
        return antivirus_facts(
            product="XProtect",
            installed=True,
            realtime_enabled=True,
            signature_age_days=whole_days(info.mtime, now),
            signature_version=parse_plist_version(host.read_text(path)),
            notes=["XProtect is part of macOS and always scans on access; age is that of its bundle"],
        )
    raise ProbeError("XProtect's bundle was not found")
