"""package on Linux: dpkg-query, else rpm."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host, ProbeError
from checks.probes.package.parse import parse_dpkg_query, parse_rpm_query
from checks.probes.registry import Facts, Params


def collect_package_linux(host: Host, params: Params) -> Facts:
    # A name such as --pipe=... or --eval=%(...) would make rpm run a command: the grammar refuses any
    # name that could be an option, and `--` ends the options anyway.
    name = require(grammar.package_name_problem, params["name"], "linux")
    if host.which("dpkg-query"):
        result = host.run(["dpkg-query", "-W", "-f=${Status}\t${Version}\n", "--", name])
        if result.returncode not in (0, 1):
            raise ProbeError(result.describe_failure())
        return parse_dpkg_query(result.stdout, result.returncode)
    if host.which("rpm"):
        result = host.run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\n", "--", name])
        return parse_rpm_query(result.stdout + result.stderr, result.returncode)
    raise ProbeError("no package manager found (looked for dpkg-query and rpm)")
