"""Running PowerShell on Windows and reading its JSON, shared by the Windows collectors."""

from __future__ import annotations

import json
from typing import Any

from checks.probes.host import Host, ProbeError

POWERSHELL = [
    "powershell.exe",
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-Command",
]


def powershell_argv(script: str) -> list[str]:
    return [*POWERSHELL, script]


def powershell_json(host: Host, script: str, *, timeout: float = 120.0) -> Any:
    """Run a script that ends in `ConvertTo-Json` and return the parsed value.

    ConvertTo-Json gives a bare object for one item and an array for several; callers that expect a list
    should pass the result through `as_list`.
    """
    result = host.run(powershell_argv(script), timeout=timeout)
    if not result.ok:
        text = (result.stderr or result.stdout).strip()
        if "Access is denied" in text or "0x80070005" in text or "PermissionDenied" in text:
            raise ProbeError(f"permission denied: {text.splitlines()[0] if text else 'access is denied'}")
        raise ProbeError(result.describe_failure())
    return parse_json_output(result.stdout)


def parse_json_output(text: str) -> Any:
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"PowerShell output is not JSON: {exc}") from exc


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
