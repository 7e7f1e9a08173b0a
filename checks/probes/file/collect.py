"""The file probe on POSIX systems: one stat, and a hash only when asked."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_file(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    info = host.stat(path)
    if info is None:
        return {
            "exists": False,
            **{
                key: None
                for key in (
                    "is_dir",
                    "mode",
                    "owner",
                    "group",
                    "size",
                    "world_readable",
                    "world_writable",
                    "group_writable",
                )
            },
        }
    facts: Facts = {
        "exists": True,
        "is_dir": info.is_dir,
        "mode": f"{info.mode:04o}",
        "owner": info.owner,
        "group": info.group,
        "size": info.size,
        "world_readable": bool(info.mode & 0o004),
        "world_writable": bool(info.mode & 0o002),
        "group_writable": bool(info.mode & 0o020),
    }
    if params.get("hash") and not info.is_dir:
        facts["sha256"] = host.hash_file(path)
    return facts
