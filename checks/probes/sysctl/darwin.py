"""sysctl on macOS: `sysctl -n`."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.sysctl.parse import sysctl_facts


def collect_sysctl_darwin(host: Host, params: Params) -> Facts:
    # `name=value` would write the setting: the grammar has no `=`, and `--` ends the options.
    result = host.run(["sysctl", "-n", "--", require(grammar.sysctl_name_problem, params["name"], "darwin")])
    if not result.ok:
        if "unknown oid" in result.stderr:
            return sysctl_facts(None)
        raise ProbeError(result.describe_failure())
    return sysctl_facts(result.stdout)
