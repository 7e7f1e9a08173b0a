"""screen_lock on macOS: the screen lock after the screen saver (sysadminctl)."""

from __future__ import annotations

from checks.probes.common import raise_for_failure
from checks.probes.host import Host
from checks.probes.registry import Facts, Params
from checks.probes.screen_lock.parse import parse_sysadminctl_screenlock


def collect_screen_lock_darwin(host: Host, params: Params) -> Facts:
    result = host.run(["sysadminctl", "-screenLock", "status"], timeout=30)
    raise_for_failure(result, "sysadminctl -screenLock status")
    return parse_sysadminctl_screenlock(result.stdout + "\n" + result.stderr)
