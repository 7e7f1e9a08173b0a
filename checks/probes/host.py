"""The machine a probe observes: what a probe may ask of it, and how it fails.

Probes never call subprocess or open files themselves: they ask a `Host`. `checks.probes.local.LocalHost`
is this machine; `checks.probes.replay.ReplayHost` answers from a directory of recorded real output, so
that Windows and macOS probes run through exactly the code the live path uses on a machine where those
systems cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DEFAULT_TIMEOUT = 60.0
DEFAULT_OUTPUT_CAP = 4 * 1024 * 1024
# Parameters reach a fixed script (PowerShell) as JSON in this environment variable, never as script text.
PARAMS_ENV = "RAMPART_PROBE_PARAMS"


class ProbeError(Exception):
    """The probe could not read its source; the check's result is `error` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CommandMissing(ProbeError):
    pass


class CommandTimeout(ProbeError):
    pass


class AccessDenied(ProbeError):
    pass


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe_failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
        detail = ": " + " / ".join(tail) if tail else ""
        return f"`{' '.join(self.argv)}` exited with status {self.returncode}{detail}"


@dataclass(frozen=True)
class FileInfo:
    path: str
    mode: int  # permission bits, e.g. 0o640
    uid: int
    gid: int
    owner: str
    group: str
    size: int
    is_dir: bool
    is_symlink: bool
    mtime: float


class Host(Protocol):
    """What probes may ask of a machine."""

    @property
    def platform(self) -> str:
        """`linux`, `windows` or `darwin`."""
        ...

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_OUTPUT_CAP,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run argv without a shell; `env` adds variables to the child's environment (data for a script)."""
        ...

    def read_text(self, path: str, *, max_bytes: int = DEFAULT_OUTPUT_CAP) -> str: ...

    def hash_file(self, path: str) -> str:
        """The SHA-256 of the file's bytes, in hex."""
        ...

    def resolve(self, path: str) -> str:
        """The path with `..` and every symbolic link resolved (the file a read would reach)."""
        ...

    def stat(self, path: str) -> FileInfo | None:
        """None when the path does not exist; AccessDenied when it cannot be looked at."""
        ...

    def which(self, name: str) -> str | None: ...

    def cache_file(self, name: str) -> str | None:
        """Where a probe may keep a cache between runs (a tool's own cache, which the tool validates);
        None: keep nothing."""
        ...

    def list_dir(self, path: str) -> list[str]: ...

    def processes(self) -> list[dict[str, object]]:
        """Running processes: pid, name, user, cmdline (list of strings)."""
        ...
