"""A small filesystem for one agent, to fill up: a tmpfs mounted in a private mount namespace.

`unshare -m` starts a process that holds a mount namespace of its own; a tmpfs of a few megabytes is
mounted there over an empty directory. Programs run inside it with `nsenter`; the test reads and writes
the small filesystem from outside through /proc/<pid>/root. Nothing is mounted on the machine itself,
and the namespace goes when its holder is killed. Needs root (CAP_SYS_ADMIN), as CI has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


class SmallDiskUnavailable(Exception):
    pass


class SmallDisk:
    def __init__(self, mountpoint: Path, size_kb: int) -> None:
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
            raise SmallDiskUnavailable("needs root with unshare and nsenter")
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.mountpoint = mountpoint
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "3600"])
        mounted = self.inside("mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(mountpoint))
        if mounted.returncode != 0:
            self.close()
            raise SmallDiskUnavailable(f"cannot mount a tmpfs in a private namespace: {mounted.stderr.strip()}")

    def inside(self, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a program in the namespace (sees the small filesystem at `mountpoint`)."""
        done: subprocess.CompletedProcess[str] = subprocess.run(
            ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv],
            capture_output=True,
            text=True,
            timeout=kwargs.pop("timeout", 120),
            **kwargs,
        )
        return done

    def outside(self, path: Path) -> Path:
        """The same file seen from outside the namespace."""
        return Path(f"/proc/{self.holder.pid}/root") / path.relative_to("/")

    def fill(self, name: str = "ballast") -> int:
        """Write zeros until the filesystem is full; returns the bytes written."""
        target = self.outside(self.mountpoint / name)
        written = 0
        chunk = b"\0" * 4096
        with open(target, "ab", buffering=0) as handle:
            try:
                while True:
                    handle.write(chunk)
                    handle.flush()
                    written += len(chunk)
            except OSError:
                pass
        return written

    def free(self, name: str = "ballast") -> None:
        self.outside(self.mountpoint / name).unlink(missing_ok=True)

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait(timeout=30)
