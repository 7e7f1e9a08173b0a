"""Choosing the processes a policy asks about from the Host's listing."""

from __future__ import annotations

import re
from typing import Any

from checks.probes.registry import Facts


def select_processes(processes: list[dict[str, object]], name: str | None, pattern: str | None) -> Facts:
    regex = re.compile(pattern) if pattern else None
    matched: list[dict[str, Any]] = []
    for proc in processes:
        cmdline_parts = proc.get("cmdline") or []
        cmdline = (
            " ".join(str(part) for part in cmdline_parts) if isinstance(cmdline_parts, list) else str(cmdline_parts)
        )
        if name is not None and proc.get("name") != name:
            continue
        if regex is not None and not regex.search(cmdline):
            continue
        matched.append(
            {
                "pid": int(str(proc["pid"])),
                "name": str(proc.get("name", "")),
                "user": str(proc.get("user", "")),
                "cmdline": cmdline,
            }
        )
    matched.sort(key=lambda p: p["pid"])
    return {"running": bool(matched), "count": len(matched), "processes": matched}
