"""service on Windows: one fixed Get-Service script, the name passed as data."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.service.parse import parse_windows_service
from checks.probes.windows import READ_PARAMS, powershell_json

# One fixed script whatever the name: the name travels as data (READ_PARAMS), never in the text.
WINDOWS_SERVICE_SCRIPT = (
    READ_PARAMS + "$s = Get-Service -Name $p.name -ErrorAction SilentlyContinue; "
    "if ($s) { $s | Select-Object Name,@{n='Status';e={[string]$_.Status}},"
    "@{n='StartType';e={[string]$_.StartType}} | ConvertTo-Json -Compress } else { 'null' }"
)


def collect_service_windows(host: Host, params: Params) -> Facts:
    name = require(grammar.service_name_problem, params["name"], "windows")
    return parse_windows_service(powershell_json(host, WINDOWS_SERVICE_SCRIPT, params={"name": name}))
