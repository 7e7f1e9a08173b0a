"""A recorded machine as a `Host`: answers from real output captured on it, and keeps what was asked."""

from __future__ import annotations

import json
import ntpath
import posixpath
from dataclasses import dataclass
from pathlib import Path

from checks.probes.host import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT,
    PARAMS_ENV,
    AccessDenied,
    CommandMissing,
    CommandResult,
    CommandTimeout,
    FileInfo,
    ProbeError,
)


@dataclass(frozen=True)
class Call:
    argv: tuple[str, ...]
    env: dict[str, str]


def _params_of(env: dict[str, str] | None) -> object:
    raw = (env or {}).get(PARAMS_ENV)
    return None if raw is None else json.loads(raw)


class ReplayHost:
    """A recorded machine: a directory with `host.json` and the real outputs captured from it.

    `host.json`:
        {"platform": "windows", "source": "where and how this was recorded",
         "commands": [{"argv": [...], "returncode": 0, "stdout_file": "x.txt", "stderr": "",
                       "missing": false, "timeout": false},
                      {"match": "Win32_OperatingSystem", "stdout_file": "os.json"}],
         "files": {"/etc/ssh/sshd_config": {"content_file": "sshd_config", "mode": "0644",
                   "owner": "root", "group": "root", "denied": false}},
         "which": {"apt-get": "/usr/bin/apt-get"}, "dirs": {"/etc/apt/sources.list.d": ["a.list"]},
         "processes": [{"pid": 1, "name": "systemd", "user": "root", "cmdline": ["/sbin/init"]}],
         "links": {"/etc/alternatives/x": "/usr/bin/x"}}

    A command matches by its exact `argv`, or by `match`, a part of the command line (useful for
    PowerShell scripts); with `params`, only when the command was given those parameters as data (the
    JSON in PARAMS_ENV). A command or file the recording does not hold behaves as absent. `calls` keeps
    what was run, so tests can show what a probe would have started.
    """

    def __init__(self, directory: str | Path, cache_dir: str | Path | None = None) -> None:
        self.directory = Path(directory)
        self._cache_dir = None if cache_dir is None else Path(cache_dir)  # the agent's own, beside the recording
        spec = json.loads((self.directory / "host.json").read_text(encoding="utf-8"))
        self._platform = str(spec["platform"])
        self.source = str(spec.get("source", ""))
        self._commands: list[dict[str, object]] = list(spec.get("commands", []))
        self._files: dict[str, dict[str, object]] = dict(spec.get("files", {}))
        self._which: dict[str, str] = dict(spec.get("which", {}))
        self._dirs: dict[str, list[str]] = dict(spec.get("dirs", {}))
        self._processes: list[dict[str, object]] = list(spec.get("processes", []))
        self._links: dict[str, str] = dict(spec.get("links", {}))
        self.calls: list[Call] = []  # every command a probe asked to run, with the data it passed

    @property
    def platform(self) -> str:
        return self._platform

    def _text(self, entry: dict[str, object], key: str) -> str:
        if f"{key}_file" in entry:
            return (self.directory / str(entry[f"{key}_file"])).read_text(encoding="utf-8")
        return str(entry.get(key, ""))

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_OUTPUT_CAP,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        if any("\x00" in a for a in argv):
            raise ProbeError("refused to run a command with a NUL character in an argument")
        self.calls.append(Call(tuple(argv), dict(env or {})))
        joined = " ".join(argv)
        params = _params_of(env)
        for entry in self._commands:
            if "argv" in entry:
                matched = list(entry["argv"]) == list(argv)  # type: ignore[call-overload]
            else:
                matched = str(entry["match"]) in joined
            if matched and "params" in entry:
                matched = entry["params"] == params
            if matched:
                if entry.get("missing"):
                    raise CommandMissing(f"command not found: {argv[0]}")
                if entry.get("timeout"):
                    raise CommandTimeout(f"`{' '.join(argv)}` timed out after {timeout:g}s")
                if entry.get("denied"):
                    raise AccessDenied(f"permission denied running {argv[0]}")
                stdout = self._text(entry, "stdout")
                return CommandResult(
                    argv=tuple(argv),
                    returncode=int(entry.get("returncode", 0)),  # type: ignore[call-overload]
                    stdout=stdout[:max_output],
                    stderr=self._text(entry, "stderr"),
                    truncated=len(stdout) > max_output,
                )
        raise CommandMissing(f"command not found: {argv[0]} (not in the recording {self.directory.name})")

    def read_text(self, path: str, *, max_bytes: int = DEFAULT_OUTPUT_CAP) -> str:
        entry = self._files.get(path)
        if entry is None:
            raise ProbeError(f"{path} does not exist")
        if entry.get("denied"):
            raise AccessDenied(f"permission denied reading {path}")
        return self._text(entry, "content")[:max_bytes]

    def stat(self, path: str) -> FileInfo | None:
        entry = self._files.get(path)
        if entry is None:
            return None
        if entry.get("stat_denied"):
            raise AccessDenied(f"permission denied looking at {path}")
        content = "" if entry.get("denied") else self._text(entry, "content")
        return FileInfo(
            path=path,
            mode=int(str(entry.get("mode", "0644")), 8),
            uid=int(entry.get("uid", 0)),  # type: ignore[call-overload]
            gid=int(entry.get("gid", 0)),  # type: ignore[call-overload]
            owner=str(entry.get("owner", "root")),
            group=str(entry.get("group", "root")),
            size=len(content.encode()),
            is_dir=bool(entry.get("is_dir", False)),
            is_symlink=bool(entry.get("is_symlink", False)),
            mtime=float(entry.get("mtime", 0.0)),  # type: ignore[arg-type]
        )

    def hash_file(self, path: str) -> str:
        import hashlib

        return hashlib.sha256(self.read_text(path).encode("utf-8")).hexdigest()

    def resolve(self, path: str) -> str:
        paths = ntpath if self._platform == "windows" else posixpath
        current = paths.normpath(path)
        for _ in range(40):  # the kernel's own limit on links followed
            for link, target in self._links.items():
                if current == link or current.startswith(link.rstrip(paths.sep) + paths.sep):
                    current = paths.normpath(paths.join(paths.dirname(link), target) + current[len(link) :])
                    break
            else:
                return str(current)
        raise ProbeError(f"{path}: too many levels of symbolic links")

    def which(self, name: str) -> str | None:
        return self._which.get(name)

    def cache_file(self, name: str) -> str | None:
        return None if self._cache_dir is None else str(self._cache_dir / name)

    def list_dir(self, path: str) -> list[str]:
        return sorted(self._dirs.get(path, []))

    def processes(self) -> list[dict[str, object]]:
        return list(self._processes)
