"""What systemctl, Get-Service and launchctl print, as service facts."""

from __future__ import annotations

from typing import Any

from checks.probes.registry import Facts
from checks.probes.windows import as_objects


def parse_systemctl_show(text: str) -> Facts:
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    load = props.get("LoadState", "")
    active = props.get("ActiveState", "")
    enabled_state = props.get("UnitFileState", "")
    if load in ("not-found", "") or (load == "masked" and not enabled_state):
        return {"exists": False, "active": False, "enabled": False, "state": load or "not-found"}
    enabled: bool | None
    if enabled_state in ("enabled", "enabled-runtime", "alias", "static", "indirect", "generated"):
        enabled = enabled_state in ("enabled", "enabled-runtime", "alias")
        if enabled_state in ("static", "indirect", "generated"):
            enabled = None  # started by another unit or generated: "enabled at boot" is not defined
    else:
        enabled = False
    return {"exists": True, "active": active in ("active", "reloading"), "enabled": enabled, "state": active}


def parse_windows_service(data: Any) -> Facts:
    items = as_objects(data, "Get-Service")
    if not items:
        return {"exists": False, "active": False, "enabled": False, "state": "not-found"}
    service = items[0]
    status = str(service.get("Status", ""))
    start = str(service.get("StartType", ""))
    return {
        "exists": True,
        "active": status == "Running",
        "enabled": start in ("Automatic", "Boot", "System"),
        "state": status,
    }


def parse_launchctl_list(text: str, label: str) -> Facts:
    for line in text.splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == label:
            running = parts[0] != "-"
            return {
                "exists": True,
                "active": running,
                "enabled": None,
                "state": "running" if running else "loaded",
            }
    return {"exists": False, "active": False, "enabled": False, "state": "not-loaded"}
