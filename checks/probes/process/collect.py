"""The process probe: the same on every platform (the Host lists the processes)."""

from __future__ import annotations

from checks.probes.host import Host, ProbeError
from checks.probes.process.parse import select_processes
from checks.probes.registry import Facts, Params


def collect_process(host: Host, params: Params) -> Facts:
    if not params.get("name") and not params.get("cmdline_pattern"):
        raise ProbeError("process probe needs `name` or `cmdline_pattern`")
    return select_processes(host.processes(), params.get("name"), params.get("cmdline_pattern"))
