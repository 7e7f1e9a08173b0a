"""screen_lock's pure parsers: the Windows registry value, sysadminctl's answer, GNOME's gsettings values."""

from __future__ import annotations

import re
from typing import Any

from checks.probes.host import ProbeError
from checks.probes.registry import Facts


def parse_windows_screen_lock(data: Any) -> Facts:
    value = data.get("InactivityTimeoutSecs") if isinstance(data, dict) else None
    source = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\InactivityTimeoutSecs"
    if not isinstance(value, int) or value <= 0:
        return {"desktop": "windows", "enabled": False, "timeout_seconds": None, "source": source + " (not set)"}
    return {"desktop": "windows", "enabled": True, "timeout_seconds": value, "source": source}


def parse_sysadminctl_screenlock(text: str) -> Facts:
    """`sysadminctl -screenLock status` (it writes to stderr): `screenLock delay is 300 seconds`,
    `screenLock delay is immediate`, `screenLock is off`."""
    source = "sysadminctl -screenLock status"
    if re.search(r"screenLock is off", text, re.I):
        return {"desktop": "macos", "enabled": False, "timeout_seconds": None, "source": source}
    if re.search(r"screenLock delay is immediate", text, re.I):
        return {"desktop": "macos", "enabled": True, "timeout_seconds": 0, "source": source}
    match = re.search(r"screenLock delay is (\d+) seconds", text, re.I)
    if match:
        return {"desktop": "macos", "enabled": True, "timeout_seconds": int(match.group(1)), "source": source}
    raise ProbeError(f"unrecognised sysadminctl output: {text.strip()[:200]!r}")


GNOME_SOURCE = (
    "gsettings as the agent's user: the machine's dconf defaults and locks (/etc/dconf/db) over GNOME's own; "
    "a user's own changes are not seen"
)


def parse_gsettings_value(text: str) -> bool | int:
    """One `gsettings get` answer: `true`, `false`, `uint32 300` or a bare number."""
    value = text.strip()
    if value in ("true", "false"):
        return value == "true"
    match = re.fullmatch(r"(?:u?int(?:32|64)\s+)?(\d+)", value)
    if match:
        return int(match.group(1))
    raise ProbeError(f"unrecognised gsettings value: {value[:100]!r}")


def gnome_screen_lock(values: dict[str, bool | int]) -> Facts:
    idle = values.get("idle-delay")
    lock = values.get("lock-enabled")
    delay = values.get("lock-delay")
    if not isinstance(idle, int) or isinstance(idle, bool) or not isinstance(lock, bool):
        raise ProbeError(f"gsettings gave unexpected values: {values!r}")
    enabled = lock and idle > 0
    timeout = idle + (delay if isinstance(delay, int) and not isinstance(delay, bool) else 0) if enabled else None
    return {"desktop": "gnome", "enabled": enabled, "timeout_seconds": timeout, "source": GNOME_SOURCE}
