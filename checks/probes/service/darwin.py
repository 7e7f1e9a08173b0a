"""service on macOS: the launchd label looked up in `launchctl list`."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.service.parse import parse_launchctl_list


def collect_service_darwin(host: Host, params: Params) -> Facts:
    label = require(grammar.service_name_problem, params["name"], "darwin")
    result = host.run(["launchctl", "list"])  # the label is looked up in the listing, never passed
    if not result.ok:
        raise ProbeError(result.describe_failure())
    return parse_launchctl_list(result.stdout, label)
