"""os on macOS: sw_vers and uname."""

from __future__ import annotations

from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params


def collect_os_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["sw_vers"])
    if not result.ok:
        raise ProbeError(result.describe_failure())
    values = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    kernel = host.run(["uname", "-r"]).stdout.strip() or None
    arch = host.run(["uname", "-m"]).stdout.strip() or None
    hostname = host.run(["hostname"]).stdout.strip() or None
    return {
        "platform": "darwin",
        "name": f"{values.get('ProductName', 'macOS')} {values.get('ProductVersion', '')}".strip(),
        "id": "macos",
        "id_like": [],
        "version": values.get("ProductVersion", ""),
        "build": values.get("BuildVersion"),
        "kernel": kernel,
        "arch": arch,
        "hostname": hostname,
    }
