"""patch_level on macOS: Software Update's recorded recommendations and the install history."""

from __future__ import annotations

import time

from checks.probes.common import raise_for_failure
from checks.probes.host import Host, ProbeError
from checks.probes.patch_level.parse_macos import parse_install_history, parse_softwareupdate_prefs
from checks.probes.registry import Facts, Params

INSTALL_HISTORY = "/Library/Receipts/InstallHistory.plist"


def collect_patch_level_darwin(host: Host, params: Params) -> Facts:
    import plistlib

    now = time.time()
    prefs = host.run(["defaults", "read", "/Library/Preferences/com.apple.SoftwareUpdate"], timeout=30)
    if not prefs.ok and "does not exist" not in prefs.stderr:
        raise_for_failure(prefs, "defaults read com.apple.SoftwareUpdate")
    result = parse_softwareupdate_prefs(prefs.stdout if prefs.ok else "", now)
    try:
        history = host.run(["plutil", "-convert", "xml1", "-o", "-", INSTALL_HISTORY], timeout=30)
        result.last_installed = parse_install_history(plistlib.loads(history.stdout.encode("utf-8")))
    except (ProbeError, plistlib.InvalidFileException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, ProbeError) else "it could not be parsed"
        result.notes.append(f"last install unknown: {INSTALL_HISTORY}: {reason}")
    if result.last_installed is None and not any("last install" in n for n in result.notes):
        result.notes.append("no Software Update install found in the install history")
    result.reboot_pending = None
    result.notes.append("macOS does not expose a pending-restart flag to read")
    return result.facts(now)
