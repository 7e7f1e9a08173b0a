"""What dpkg-query and rpm print, as package facts."""

from __future__ import annotations

from checks.probes.registry import Facts


def parse_dpkg_query(text: str, returncode: int) -> Facts:
    for line in text.splitlines():
        status, _, version = line.partition("\t")
        if status.strip().endswith(" installed"):
            return {"installed": True, "version": version.strip() or None, "manager": "dpkg"}
    return {"installed": False, "version": None, "manager": "dpkg"}


def parse_rpm_query(text: str, returncode: int) -> Facts:
    if returncode != 0 or "is not installed" in text:
        return {"installed": False, "version": None, "manager": "rpm"}
    first = text.strip().splitlines()[0] if text.strip() else ""
    return {"installed": bool(first), "version": first or None, "manager": "rpm"}
