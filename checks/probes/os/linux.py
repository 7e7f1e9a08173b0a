"""os on Linux: os-release, /proc/sys/kernel and `uname -m`."""

from __future__ import annotations

from checks.probes.common import read_optional
from checks.probes.host import CommandMissing, Host, ProbeError
from checks.probes.os.parse import parse_os_release
from checks.probes.registry import Facts, Params


def _stripped(text: str | None) -> str | None:
    return None if text is None else text.strip()


def collect_os_linux(host: Host, params: Params) -> Facts:
    text = None
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _stripped(read_optional(host, path, unreadable="missing"))
        if text is not None:
            break
    if text is None:
        raise ProbeError("neither /etc/os-release nor /usr/lib/os-release exists")
    release = parse_os_release(text)
    arch = None
    try:
        uname = host.run(["uname", "-m"], timeout=10)
        arch = uname.stdout.strip() or None
    except CommandMissing:
        pass
    return {
        "platform": "linux",
        "name": release.get("PRETTY_NAME") or release.get("NAME", "Linux"),
        "id": release.get("ID", "linux").lower(),
        "id_like": release.get("ID_LIKE", "").lower().split(),
        "version": release.get("VERSION_ID", ""),
        "build": None,
        "kernel": _stripped(read_optional(host, "/proc/sys/kernel/osrelease", unreadable="missing")),
        "arch": arch,
        "hostname": _stripped(read_optional(host, "/proc/sys/kernel/hostname", unreadable="missing")),
    }
