"""Command execution: no shell, deadlines, output caps, missing commands; file access errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from checks.probes.host import AccessDenied, CommandMissing, CommandTimeout, ProbeError
from checks.probes.local import LocalHost, run_command


def test_runs_argv_without_a_shell() -> None:
    result = run_command(["echo", "a;", "echo", "b", "$HOME", "`id`"])
    assert result.ok
    assert result.stdout == "a; echo b $HOME `id`\n"


def test_exit_status_and_stderr_are_kept() -> None:
    result = run_command([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.describe_failure().endswith("exited with status 3: err")


def test_c_locale_is_forced() -> None:
    result = run_command([sys.executable, "-c", "import os; print(os.environ['LC_ALL'], os.environ['LANG'])"])
    assert result.stdout.strip() == "C C"


def test_missing_command() -> None:
    with pytest.raises(CommandMissing, match="command not found: no-such-command-xyz"):
        run_command(["no-such-command-xyz"])


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen(['sleep', '30']); open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(30)"
    )
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="timed out after 1s"):
        run_command([sys.executable, "-c", script], timeout=1)
    assert time.monotonic() - started < 10
    grandchild = int(marker.read_text())
    time.sleep(0.2)
    try:  # killed with its parent, not left running (a zombie awaiting its reaper is dead too)
        assert psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        pass


def test_output_is_capped_but_the_child_is_drained() -> None:
    # 5 MB of output against a 1 KB cap: the child must not block on a full pipe.
    result = run_command([sys.executable, "-c", "import sys; sys.stdout.write('x' * 5_000_000)"], max_output=1024)
    assert result.ok and result.truncated
    assert len(result.stdout) == 1024


def test_not_executable_is_access_denied(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with pytest.raises(AccessDenied):
        run_command([str(script)])


def test_read_text_errors_say_what(tmp_path: Path) -> None:
    host = LocalHost()
    with pytest.raises(ProbeError, match="does not exist"):
        host.read_text(str(tmp_path / "absent"))
    with pytest.raises(ProbeError, match="is a directory"):
        host.read_text(str(tmp_path))
    assert host.stat(str(tmp_path / "absent")) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_permission_denied_is_reported_not_hidden(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0o600)
    os.chown(secret, 0, 0)
    tmp_path.chmod(0o755)
    code = (  # import first: the interpreter's own files may not be readable once privileges are dropped
        "import os, sys; sys.path[:0] = " + repr(sys.path) + "; "
        "from checks.probes.host import AccessDenied; from checks.probes.local import LocalHost\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"try:\n    LocalHost().read_text({str(secret)!r})\nexcept AccessDenied as e:\n    print(e.reason)"
    )
    result = run_command([sys.executable, "-c", code])
    assert result.stdout.strip() == f"permission denied reading {secret}"


def test_procfs_files_are_readable() -> None:
    # procfs handlers fail with ENOMEM when asked for megabytes at once; reads must be small.
    assert LocalHost().read_text("/proc/sys/kernel/randomize_va_space").strip() in ("0", "1", "2")


def test_a_command_is_killed_when_the_process_running_it_is_told_to_stop(tmp_path: Path) -> None:
    # The worker stops on SIGTERM by unwinding (SystemExit); the command a probe was waiting on goes too.
    runner = (
        "import signal, sys\n"
        "from checks.probes.local import run_command\n"
        "def stop(signum, frame):\n"
        "    raise SystemExit(143)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "run_command(['sleep', '300'], timeout=600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", runner], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            children = [c for c in psutil.Process(proc.pid).children() if c.name() == "sleep"]
            time.sleep(0.05)
        assert children, "the command never started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive
    finally:
        proc.kill()
        proc.wait()
