"""The machine a probe observes.

Probes never call subprocess or open files themselves: they ask a `Host`. `LocalHost` is this machine;
`ReplayHost` answers from a directory of recorded real output, so that Windows and macOS probes run
through exactly the code the live path uses on a machine where those systems cannot run.
"""

from __future__ import annotations

import json
import ntpath
import os
import posixpath
import selectors
import signal
import stat as _stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
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


def current_platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return sys.platform


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def run_command(
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_output: int = DEFAULT_OUTPUT_CAP,
    env: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> CommandResult:
    """Run argv without a shell, with a deadline and a cap on captured output.

    `env` replaces the environment; `extra_env` adds to it (a fixed script's data).

    The C locale is forced so that parsers see the output they were written against. Output past the
    cap is read and discarded (the child never blocks on a full pipe) and the result says it was
    truncated. On timeout the whole process group is killed.
    """
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    if any("\x00" in a for a in argv):
        raise ProbeError("refused to run a command with a NUL character in an argument")
    child_env = dict(os.environ if env is None else env)
    child_env.update(extra_env or {})
    child_env.update({"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"})
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            start_new_session=(os.name == "posix"),
        )
    except FileNotFoundError as exc:
        raise CommandMissing(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise AccessDenied(f"permission denied running {argv[0]}") from exc

    try:
        return _collect_output(proc, argv, started, timeout, max_output)
    except BaseException:
        # Unwinding (a timeout, or the worker told to stop): the command and its children go too.
        _kill_group(proc)
        proc.wait()
        raise


def _collect_output(
    proc: subprocess.Popen[bytes], argv: list[str], started: float, timeout: float, max_output: int
) -> CommandResult:
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    truncated = False
    deadline = started + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                proc.wait()
                proc.stdout.close()
                proc.stderr.close()
                raise CommandTimeout(f"`{' '.join(argv)}` timed out after {timeout:g}s")
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = buffers[key.fd]
                room = max_output - len(buffer)
                if room > 0:
                    buffer.extend(chunk[:room])
                if len(chunk) > room:
                    truncated = True
    try:
        returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        proc.wait()
        raise CommandTimeout(f"`{' '.join(argv)}` timed out after {timeout:g}s") from exc
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return CommandResult(
        argv=tuple(argv),
        returncode=returncode,
        stdout=buffers[out_fd].decode("utf-8", "replace"),
        stderr=buffers[err_fd].decode("utf-8", "replace"),
        duration_s=time.monotonic() - started,
        truncated=truncated,
    )


class LocalHost:
    """This machine."""

    def __init__(self, platform: str | None = None, cache_dir: str | None = None) -> None:
        self._platform = platform or current_platform()
        self._cache_dir = cache_dir

    @property
    def platform(self) -> str:
        return self._platform

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_OUTPUT_CAP,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        return run_command(argv, timeout=timeout, max_output=max_output, extra_env=env)

    def hash_file(self, path: str) -> str:
        import hashlib

        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except FileNotFoundError as exc:
            raise ProbeError(f"{path} does not exist") from exc
        except PermissionError as exc:
            raise AccessDenied(f"permission denied reading {path}") from exc
        except IsADirectoryError as exc:
            raise ProbeError(f"{path} is a directory") from exc
        except OSError as exc:
            raise ProbeError(f"cannot read {path}: {exc.strerror}") from exc
        return digest.hexdigest()

    def resolve(self, path: str) -> str:
        return os.path.realpath(path)

    def read_text(self, path: str, *, max_bytes: int = DEFAULT_OUTPUT_CAP) -> str:
        try:
            # Small reads: procfs handlers allocate the requested size and fail with ENOMEM on huge reads.
            chunks: list[bytes] = []
            remaining = max_bytes
            with open(path, "rb", buffering=0) as handle:
                while remaining > 0:
                    chunk = handle.read(min(remaining, 65536))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    remaining -= len(chunk)
            data = b"".join(chunks)
        except FileNotFoundError as exc:
            raise ProbeError(f"{path} does not exist") from exc
        except PermissionError as exc:
            raise AccessDenied(f"permission denied reading {path}") from exc
        except IsADirectoryError as exc:
            raise ProbeError(f"{path} is a directory") from exc
        except OSError as exc:
            raise ProbeError(f"cannot read {path}: {exc.strerror}") from exc
        return data.decode("utf-8", "replace")

    def stat(self, path: str) -> FileInfo | None:
        try:
            st = os.lstat(path)
            is_symlink = _stat.S_ISLNK(st.st_mode)
            if is_symlink:
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    pass
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise AccessDenied(f"permission denied looking at {path}") from exc
        return FileInfo(
            path=path,
            mode=_stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            owner=_user_name(st.st_uid),
            group=_group_name(st.st_gid),
            size=st.st_size,
            is_dir=_stat.S_ISDIR(st.st_mode),
            is_symlink=is_symlink,
            mtime=st.st_mtime,
        )

    def cache_file(self, name: str) -> str | None:
        if self._cache_dir is None:
            return None
        try:
            os.makedirs(self._cache_dir, mode=0o700, exist_ok=True)
        except OSError:
            return None  # nothing kept: slower, not wrong
        return os.path.join(self._cache_dir, name)

    def which(self, name: str) -> str | None:
        import shutil

        # Daemons often run with a minimal PATH; the sbin directories hold most of what probes need.
        path = os.environ.get("PATH", "") + os.pathsep + "/usr/local/sbin:/usr/sbin:/sbin"
        return shutil.which(name, path=path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []
        except PermissionError as exc:
            raise AccessDenied(f"permission denied listing {path}") from exc

    def processes(self) -> list[dict[str, object]]:
        import psutil

        found: list[dict[str, object]] = []
        for proc in psutil.process_iter(["pid", "name", "username", "cmdline"]):
            info = proc.info
            found.append(
                {
                    "pid": info["pid"],
                    "name": info.get("name") or "",
                    "user": info.get("username") or "",
                    "cmdline": list(info.get("cmdline") or []),
                }
            )
        return found


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


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
