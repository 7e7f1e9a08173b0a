"""Windows Update: the Windows Update Agent's answer (as our script prints it) as patch facts."""

from __future__ import annotations

from typing import Any

from checks.probes.common import parse_timestamp, whole_days
from checks.probes.host import ProbeError
from checks.probes.patch_level.facts import PatchFacts

# Category ids do not change with the display language (names do: "Sicherheitsupdates").
SECURITY_UPDATES_CATEGORY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


def parse_windows_update(data: Any, now: float) -> PatchFacts:
    if not isinstance(data, dict):
        raise ProbeError("the Windows Update Agent returned nothing")
    result = PatchFacts("windows_update")
    updates = data.get("Updates") or []
    if isinstance(updates, dict):
        updates = [updates]
    security: list[tuple[str, float | None]] = []
    for update in updates:
        categories = [str(c).lower() for c in (update.get("CategoryIDs") or [])]
        if SECURITY_UPDATES_CATEGORY in categories or (update.get("MsrcSeverity") or "").strip():
            security.append((str(update.get("Title", "")), parse_timestamp(update.get("Released"))))
    result.pending_updates = len(updates)
    result.security_updates = len(security)
    result.security_packages = [title for title, _ in security]
    released = [when for _, when in security if when is not None]
    if security and len(released) == len(security):
        result.oldest_security_update_age_days = whole_days(min(released), now)
    elif security:
        result.notes.append("an update carries no release date: the age of the oldest cannot be known")
        result.unknown_because["oldest_security_update_age_days"] = (
            f"{len(security) - len(released)} of {len(security)} pending security updates carry no release date"
        )
    result.index_updated = parse_timestamp(data.get("LastSearchSuccessDate"))
    if result.index_updated is None:
        result.notes.append("Windows Update has never completed a scan: pending updates are not known")
        never = "Windows Update has never completed a scan: known after its first (Settings > Windows Update)"
        for name in ("pending_updates", "security_updates"):
            result.unknown_because[name] = never
        result.pending_updates = result.security_updates = None
    result.last_installed = parse_timestamp(data.get("LastInstallationSuccessDate"))
    reboot = data.get("RebootRequired")
    result.reboot_pending = bool(reboot) if isinstance(reboot, bool) else None
    return result
