"""Linux: when the machine booted, to tell whether a kernel installed since waits for a reboot."""

from __future__ import annotations


def parse_btime(proc_stat: str) -> float | None:
    for line in proc_stat.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None
