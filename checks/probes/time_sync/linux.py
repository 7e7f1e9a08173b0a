"""Linux: ask systemd-timedated through `timedatectl show` (no root needed)."""

from __future__ import annotations

from checks.probes.host import CommandMissing, Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.probes.time_sync.parse import parse_timedatectl_show


def collect_time_sync_linux(host: Host, params: Params) -> Facts:
    binary = host.which("timedatectl")
    if binary is None:
        raise CommandMissing("timedatectl is not installed: time synchronisation can only be read from systemd")
    result = host.run([binary, "show"], timeout=30)
    if not result.ok:
        text = (result.stderr + result.stdout).strip()
        if "not been booted with systemd" in text or "Failed to connect to bus" in text:
            raise ProbeError(f"systemd is not the init system here, so timedatectl cannot answer ({text[:200]})")
        raise ProbeError(result.describe_failure())
    return parse_timedatectl_show(result.stdout)
