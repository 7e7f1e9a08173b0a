"""What every platform's parser builds: one volume entry, and the facts summarising the volumes."""

from __future__ import annotations

from typing import Any

from checks.probes.registry import Facts


def summarise(volumes: list[dict[str, Any]], notes: list[str]) -> Facts:
    system = [v for v in volumes if v["kind"] == "system"]
    return {
        "volumes": volumes,
        "system_encrypted": system[0]["compliant"] if system else None,
        "noncompliant": [v["mount"] for v in volumes if v["compliant"] is False],
        "notes": notes,
    }


def volume(
    mount: str,
    device: str,
    kind: str,
    *,
    encrypted: bool | None,
    method: str | None,
    protection_on: bool | None,
    status: str,
    percent: float | None = None,
) -> dict[str, Any]:
    compliant: bool | None
    if status in ("unknown",) or encrypted is None:
        compliant = None
    else:
        compliant = bool(encrypted and protection_on and status in ("encrypted", "locked"))
    return {
        "mount": mount,
        "device": device,
        "kind": kind,
        "encrypted": encrypted,
        "method": method,
        "protection_on": protection_on,
        "status": status,
        "percent": percent,
        "compliant": compliant,
    }
