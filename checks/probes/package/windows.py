"""package on Windows: the uninstall registry keys, read by one fixed script."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.windows import READ_PARAMS, as_list, powershell_json

# One fixed script whatever the name: the name travels as data (READ_PARAMS), never in the text.
WINDOWS_PACKAGE_SCRIPT = (
    READ_PARAMS + "$keys = 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*',"
    "'HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*'; "
    "Get-ItemProperty $keys -ErrorAction SilentlyContinue | Where-Object { $_.DisplayName -like $p.name } | "
    "Select-Object DisplayName,DisplayVersion | ConvertTo-Json -Compress"
)


def collect_package_windows(host: Host, params: Params) -> Facts:
    name = require(grammar.package_name_problem, params["name"], "windows")
    items = as_list(powershell_json(host, WINDOWS_PACKAGE_SCRIPT, params={"name": name}))
    if not items:
        return {"installed": False, "version": None, "manager": "registry"}
    return {"installed": True, "version": items[0].get("DisplayVersion"), "manager": "registry"}
