"""screen_lock on Linux: GNOME's idle and lock settings, read with gsettings, where GNOME is installed."""

from __future__ import annotations

from checks.probes.common import raise_for_failure
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.screen_lock.parse import gnome_screen_lock, parse_gsettings_value

# GNOME keeps the lock in three settings: the session goes idle after idle-delay seconds (0: never), and
# then, when lock-enabled, the screen locks lock-delay seconds later.
GNOME_KEYS = (
    ("org.gnome.desktop.session", "idle-delay"),
    ("org.gnome.desktop.screensaver", "lock-enabled"),
    ("org.gnome.desktop.screensaver", "lock-delay"),
)


def collect_screen_lock_linux(host: Host, params: Params) -> Facts:
    if not host.which("gnome-shell"):
        return {"desktop": None, "enabled": None, "timeout_seconds": None, "source": "no GNOME desktop (gnome-shell)"}
    if not host.which("gsettings"):
        raise ProbeError("GNOME is installed but gsettings is not (package libglib2.0-bin)")
    values: dict[str, bool | int] = {}
    for schema, key in GNOME_KEYS:
        result = host.run(["gsettings", "get", schema, key], timeout=30)
        raise_for_failure(result, f"gsettings get {schema} {key}")
        if "memory" in result.stderr and "backend" in result.stderr:
            # Without dconf's backend gsettings answers GNOME's defaults, not the machine's settings.
            raise ProbeError(
                "gsettings has no dconf backend (package dconf-gsettings-backend): the settings cannot be read"
            )
        values[key] = parse_gsettings_value(result.stdout)
    return gnome_screen_lock(values)
