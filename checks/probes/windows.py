"""Running PowerShell on Windows and reading its JSON, shared by the Windows collectors.

Scripts are fixed text: a parameter is never written into one. PowerShell takes more characters for
quotes than `'` (the typographic U+2018 to U+201B as well), so quoting cannot be made safe; instead the
parameters travel as JSON in the environment variable PARAMS_ENV, and a script that needs them starts with
`READ_PARAMS`, which leaves them in `$p` as plain data.
"""

from __future__ import annotations

import json
from typing import Any

from checks.probes.common import json_type
from checks.probes.host import PARAMS_ENV, Host, ProbeError

READ_PARAMS = f"$p = $env:{PARAMS_ENV} | ConvertFrom-Json; "

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


def powershell_json(host: Host, script: str, *, params: dict[str, Any] | None = None, timeout: float = 120.0) -> Any:
    """Run a fixed script that ends in `ConvertTo-Json` and return the parsed value.

    `params` reach the script as data (see the module's docstring). ConvertTo-Json gives a bare object for
    one item and an array for several; callers that expect a list should pass the result through `as_list`.
    """
    env = None
    if params is not None:
        if not script.startswith(READ_PARAMS):
            raise ValueError("a script given parameters must read them with READ_PARAMS")
        # ASCII JSON: every character outside it, typographic quotes included, travels as a \u escape.
        env = {PARAMS_ENV: json.dumps(params, ensure_ascii=True, sort_keys=True)}
    result = host.run(powershell_argv(script), timeout=timeout, env=env)
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


def as_objects(value: Any, what: str) -> list[dict[str, Any]]:
    """`as_list`, for a list whose every item must be a JSON object (one per volume, profile, service...).

    An item of another type means the script's output is not what it prints on any Windows we know: the
    probe says so instead of guessing, since leaving the item out could turn a failing machine into a pass.
    """
    items = as_list(value)
    for item in items:
        if not isinstance(item, dict):
            raise ProbeError(f"{what}: expected an object for each item, got {json_type(item)}")
    return items
