"""What os-release and Win32_OperatingSystem say, as data."""

from __future__ import annotations

import shlex
from typing import Any

from checks.probes.host import ProbeError
from checks.probes.registry import Facts


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                parts = shlex.split(value)
            except ValueError:
                parts = [value.strip("\"'")]
            values[key] = parts[0] if parts else ""
    return values


def parse_windows_os(data: Any) -> Facts:
    if not isinstance(data, dict):
        raise ProbeError("Win32_OperatingSystem returned nothing")
    caption = str(data.get("Caption", "")).strip()
    arch = str(data.get("OSArchitecture", "")) or None
    return {
        "platform": "windows",
        "name": caption,
        "id": "windows_server" if "Server" in caption else "windows",
        "id_like": [],
        "version": str(data.get("Version", "")),
        "build": str(data.get("BuildNumber", "")) or None,
        "kernel": str(data.get("Version", "")) or None,
        "arch": {"64-bit": "x86_64", "32-bit": "x86"}.get(arch or "", arch),
        "hostname": data.get("CSName"),
    }
