"""service on Linux: `systemctl show`."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.service.parse import parse_systemctl_show


def collect_service_linux(host: Host, params: Params) -> Facts:
    name = require(grammar.service_name_problem, params["name"], "linux")
    result = host.run(
        ["systemctl", "show", "--property=LoadState,ActiveState,SubState,UnitFileState", "--no-pager", "--", name]
    )
    if not result.ok:
        if "not been booted with systemd" in result.stderr:
            raise ProbeError("systemd is not the init system here: service state cannot be read with systemctl")
        raise ProbeError(result.describe_failure())
    return parse_systemctl_show(result.stdout)
