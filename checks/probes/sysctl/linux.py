"""sysctl on Linux: the file under /proc/sys."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.sysctl.parse import sysctl_facts


def collect_sysctl_linux(host: Host, params: Params) -> Facts:
    name = require(grammar.sysctl_name_problem, params["name"], "linux")
    path = "/proc/sys/" + name.replace(".", "/")  # the grammar leaves no `..` and no empty component
    if host.stat(path) is None:
        return sysctl_facts(None)
    return sysctl_facts(host.read_text(path))
