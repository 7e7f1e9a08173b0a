"""The process probe: the same on every platform (the Host lists the processes)."""

from __future__ import annotations

from checks.probes.host import Host, ProbeError
from checks.probes.process.parse import select_processes
from checks.probes.registry import Facts, Params
from checks.regex_budget import RegexTooSlow, time_limit, too_slow_reason


def collect_process(host: Host, params: Params) -> Facts:
    if not params.get("name") and not params.get("cmdline_pattern"):
        raise ProbeError("process probe needs `name` or `cmdline_pattern`")
    processes = host.processes()
    try:
        with time_limit():  # a pushed policy's pattern must not pin the agent's CPU
            return select_processes(processes, params.get("name"), params.get("cmdline_pattern"))
    except RegexTooSlow as exc:
        over = f"the command lines of {len(processes)} processes"
        raise ProbeError(too_slow_reason(str(params["cmdline_pattern"]), over, exc)) from None
