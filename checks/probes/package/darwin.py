"""package on macOS: the pkgutil receipt."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_package_darwin(host: Host, params: Params) -> Facts:
    # The grammar starts with a letter or digit, so the id is never read as an option.
    result = host.run(["pkgutil", "--pkg-info", require(grammar.package_name_problem, params["name"], "darwin")])
    if not result.ok:
        return {"installed": False, "version": None, "manager": "pkgutil"}
    version = None
    for line in result.stdout.splitlines():
        if line.startswith("version:"):
            version = line.split(":", 1)[1].strip()
    return {"installed": True, "version": version, "manager": "pkgutil"}
