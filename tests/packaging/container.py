"""A Debian 12 system booted in a container, for installing the agent's package the way a host does.

    root = debian_root()                       # debootstrapped once, cached outside the repository
    with booted(root, tmp_path) as machine:    # a writable overlay on it, systemd as PID 1 (systemd-nspawn)
        machine.run("dpkg", "-i", "/var/tmp/rampart-agent.deb")
        machine.run("systemctl", "is-active", "rampart-agent", check=False)

The cached tree is never written: each container gets an overlay of its own, dropped afterwards. The
container shares the host's network namespace (so an agent inside reaches a collector on the host's
loopback) and gets CAP_NET_ADMIN, which the agent's unit grants and the firewall probe needs; tests that
load a ruleset do it in a network namespace they create inside, never in the host's.
The cache: $RAMPART_CHROOT_CACHE, else $XDG_CACHE_HOME/rampart/chroots (~/.cache/...), one directory per
package list; delete it to start again. The mirror is the one this machine's apt uses.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
# What a small Debian 12 server has for the baseline to look at, and systemd to boot. (Not lintian: with its
# hundred Perl packages it would triple the debootstrap; the test that needs it installs it in its overlay.)
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3.11",
    "adduser",
    "nftables",
    "iptables",
    "openssh-server",
    "iproute2",
    "procps",
)
# Timers that would change the system under the test (apt refreshing its lists) or just use CPU.
MASKED = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "dpkg-db-backup.timer")
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_boots = itertools.count()  # two containers at once need two names (nspawn keeps state under each)


def missing_prerequisites() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, mount, systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb", "dpkg-shlibdeps"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/usr/bin/python3.11").is_file():
        return "/usr/bin/python3.11 (Debian 12's interpreter, which the package is built for) is not installed"
    return None


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), unless told otherwise."""
    if os.environ.get("RAMPART_DEBIAN_MIRROR"):
        return os.environ["RAMPART_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        text = source.read_text(errors="replace") if source.is_file() else ""
        deb822 = re.findall(r"^\s*URIs:\s*(\S+)", text, re.M)
        one_line = re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
        for uri in deb822 + one_line:
            if uri.rstrip("/").endswith("/debian"):
                return str(uri)
    return "http://deb.debian.org/debian"


def cache_dir() -> Path:
    explicit = os.environ.get("RAMPART_CHROOT_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rampart" / "chroots"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    """Unmount whatever is mounted below `path` (debootstrap's /proc and /sys after an interrupted run)."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True, timeout=60)
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"cannot unmount {', '.join(left)}: remove them by hand")


def remove_tree(path: Path) -> None:
    """rmtree that never descends into a mounted file system (a /proc, or worse, a bind mount of /dev)."""
    if path.exists():
        unmount_all(path)
        shutil.rmtree(path)


def debian_root() -> Path:
    """A minimal Debian 12 with PACKAGES, debootstrapped on first use (a minute or two and 320 MB)."""
    key = hashlib.sha256(f"{SUITE} minbase {' '.join(sorted(PACKAGES))}".encode()).hexdigest()[:16]
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"{SUITE}-{key}"
    with (cache / f"{SUITE}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time; the others wait and reuse it
        if (root / ".rampart-complete").exists():
            return root
        partial = cache / f"{SUITE}-{key}.partial"
        remove_tree(partial)
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(partial),
            debian_mirror(),
        ]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=1200)
        finally:
            if process.poll() is None:  # interrupted: let debootstrap unmount what it mounted, then be sure
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
            unmount_all(partial)
        if process.returncode != 0:
            log = partial / "debootstrap" / "debootstrap.log"
            detail = (
                log.read_text(errors="replace")[-3000:] if log.exists() else output.decode(errors="replace")[-3000:]
            )
            raise RuntimeError(f"debootstrap failed ({process.returncode}):\n{detail}")
        for timer in MASKED:
            (partial / "etc/systemd/system" / timer).symlink_to("/dev/null")
        (partial / ".rampart-complete").write_text(f"{SUITE} {' '.join(PACKAGES)}\n")
        remove_tree(root)
        partial.rename(root)
    return root


@dataclass
class Machine:
    """A booted container: run commands in it (as root, a clean environment) and reach its files."""

    root: Path  # the overlay, as the host sees it
    leader: int  # the container's PID 1, as the host sees it
    log: Path

    def run(
        self, *argv: str, check: bool = True, timeout: float = 300, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", f"--target={self.leader}", "--all", "--root", "--wd", "--"]
        command += ["env", "-i", f"PATH={CLEAN_PATH}", "HOME=/root", "LANG=C.UTF-8", *argv]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode} in the container:\n{result.stdout}{result.stderr}"
            )
        return result

    def path(self, inside: str) -> Path:
        """Where a file of the container is on the host (not for /run or /tmp: they are the container's tmpfs)."""
        return self.root / inside.lstrip("/")

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout


def _leader_of(nspawn: subprocess.Popen[bytes], deadline: float) -> int:
    """The container's PID 1: the child systemd-nspawn forks for it."""
    children = Path(f"/proc/{nspawn.pid}/task/{nspawn.pid}/children")
    while time.monotonic() < deadline:
        if nspawn.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited with {nspawn.returncode} before the container started")
        pids = children.read_text().split() if children.exists() else []
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise RuntimeError("the container's init did not start")


@contextmanager
def overlay(lowers: list[Path], workspace: Path) -> Iterator[Path]:
    """A writable view of `lowers` (the first on top), its changes kept in `workspace`, unmounted after."""
    upper, work, merged = (workspace / name for name in ("upper", "work", "merged"))
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    lowerdir = ":".join(str(lower) for lower in lowers)
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lowerdir},upperdir={upper},workdir={work}",
            str(merged),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=False, capture_output=True, timeout=60)


def spawn(root: Path, *argv: str, user: str = "root", timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run one command in a container of `root` (no boot: systemd-nspawn sets up /proc, /dev and the rest)."""
    command = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory", str(root), f"--user={user}"]
    command += ["--machine", f"rampart-run-{os.getpid()}-{next(_boots)}", "--setenv=DEBIAN_FRONTEND=noninteractive"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def lintian_layer(base: Path) -> Path:
    """lintian installed over `base`, kept as an overlay layer of its own (apt-get in a container)."""
    layer = base.parent / f"{base.name}-lintian"
    with (base.parent / f"{base.name}-lintian.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (layer / ".rampart-complete").exists():
            return layer
        partial = base.parent / f"{base.name}-lintian.partial"
        remove_tree(partial)
        partial.mkdir()
        with overlay([base], partial) as merged:
            install = "apt-get install -y -q --no-install-recommends lintian && apt-get clean"
            result = spawn(merged, "sh", "-c", install)
        if result.returncode != 0:
            raise RuntimeError(
                f"installing lintian failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        (partial / "upper" / ".rampart-complete").write_text("lintian\n")
        remove_tree(layer)
        (partial / "upper").rename(layer)
        remove_tree(partial)
    return layer


@contextmanager
def booted(lower: Path, workspace: Path, *, timeout: float = 180) -> Iterator[Machine]:
    """Boot `lower` under a throwaway overlay in `workspace`; shut it down and drop the overlay after."""
    with overlay([lower], workspace) as merged:
        log = workspace / "boot.log"
        nspawn: subprocess.Popen[bytes] | None = None
        try:
            with log.open("wb") as output:
                nspawn = subprocess.Popen(
                    ["systemd-nspawn", "--directory", str(merged), "--boot", "--register=no", "--keep-unit",
                     "--machine", f"rampart-test-{os.getpid()}-{next(_boots)}", "--capability=CAP_NET_ADMIN",
                     "--console=passive"],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            deadline = time.monotonic() + timeout
            machine = Machine(merged, _leader_of(nspawn, deadline), log)
            # `is-system-running --wait` blocks until the boot is done; before PID 1 listens it fails at once.
            state = ""
            while time.monotonic() < deadline:
                remaining = max(deadline - time.monotonic(), 1)
                state = machine.run(
                    "systemctl", "is-system-running", "--wait", check=False, timeout=remaining
                ).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"the container did not finish booting ({state!r}):\n{log.read_text()[-3000:]}")
            yield machine
        finally:
            if nspawn is not None and nspawn.poll() is None:
                nspawn.send_signal(signal.SIGTERM)  # systemd-nspawn asks the container's systemd to power off
                try:
                    nspawn.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    os.killpg(nspawn.pid, signal.SIGKILL)
                    nspawn.wait(timeout=30)
