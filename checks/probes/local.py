"""This machine as a `Host`: commands run without a shell, under a deadline and an output cap."""

from __future__ import annotations

import os
import selectors
import signal
import stat as _stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from checks.probes.host import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT,
    AccessDenied,
    CommandMissing,
    CommandResult,
    CommandTimeout,
    FileInfo,
    ProbeError,
)


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


@contextmanager
def _reading(path: str) -> Iterator[None]:
    """A file read's failure as the probe error that says it (missing, denied, a directory, unreadable)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ProbeError(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise AccessDenied(f"permission denied reading {path}") from exc
    except IsADirectoryError as exc:
        raise ProbeError(f"{path} is a directory") from exc
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc.strerror}") from exc


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
        with _reading(path), open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def resolve(self, path: str) -> str:
        return os.path.realpath(path)

    def read_text(self, path: str, *, max_bytes: int = DEFAULT_OUTPUT_CAP) -> str:
        # Small reads: procfs handlers allocate the requested size and fail with ENOMEM on huge reads.
        chunks: list[bytes] = []
        remaining = max_bytes
        with _reading(path), open(path, "rb", buffering=0) as handle:
            while remaining > 0:
                chunk = handle.read(min(remaining, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        data = b"".join(chunks)
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
