"""`rampart-agent run` as a real process: scheduled runs, clean stop on SIGTERM, SIGHUP, coalesced misses.

The collector is away (a closed port) throughout: the daemon keeps collecting into the spool.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agent.spool import Spool
from agent.state import StatePaths
from tests.agent.helpers import ROOT, clean_env, command_check, make_state, small_policy
from tests.agent.test_worker import agent_config, closed_port_url
from tests.conftest import BIN, run_cli


class DaemonProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [str(BIN / "rampart-agent"), "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=self.handle,
            env=clean_env(),
            cwd=ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            assert self.proc.poll() is None, f"daemon exited early:\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def runs(self) -> int:
        return len(re.findall(r" run: ", self.log()))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=40)
        self.handle.close()
        return code


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[[Path], DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path) -> DaemonProcess:
        daemon = DaemonProcess(config, tmp_path / f"daemon-{len(started)}.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        daemon.handle.close()


def fast_config(tmp_path: Path, root: Path, **extra: object) -> Path:
    settings: dict[str, object] = {
        "check_intervals": {"passwd-exists": "2s", "no-such-file": "2s"},
        "splay": "0",
        "jitter": "0",
        "checkin_interval": "1h",
    }
    settings.update(extra)
    return agent_config(tmp_path, root, **settings)


def worker_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "agent.worker" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_daemon_keeps_collecting_while_the_collector_is_away_and_stops_cleanly(
    tmp_path: Path, daemon_factory: Callable[[Path], DaemonProcess]
) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy()])
    daemon = daemon_factory(fast_config(tmp_path, root))
    daemon.wait_for(lambda: daemon.runs() >= 3, 60, "three scheduled runs")
    # the idle parent holds neither cryptography nor the policy engine: they live in the workers
    maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    assert "cryptography" not in maps and "_yaml" not in maps and "psutil" not in maps
    assert daemon.stop() == 0
    log = daemon.log()
    assert "schedule: 2 checks in 1 job(s) (2 every 2s)" in log
    assert "stopped" in log.splitlines()[-1]
    assert "Traceback" not in log
    with Spool(StatePaths(root).spool, 1 << 30) as spool:
        stats = spool.stats()
        assert spool.integrity() == "ok"
        assert stats.reports >= 3 and stats.results == 2 * stats.reports and stats.delivered_reports == 0


@pytest.mark.slow
def test_sigterm_during_a_run_stops_the_worker_too(
    tmp_path: Path, daemon_factory: Callable[[Path], DaemonProcess]
) -> None:
    root = tmp_path / "state"
    slow = dict(command_check("slow"), probe={"name": "command", "params": {"argv": ["sleep", "30"], "timeout": 60}})
    make_state(root, collector_url=closed_port_url(), policies=[small_policy(checks=[slow])])
    daemon = daemon_factory(fast_config(tmp_path, root, allow_command_probe=True, check_intervals={"slow": "2s"}))
    daemon.wait_for(lambda: bool(worker_children(daemon.proc.pid)), 30, "a running worker")
    time.sleep(1.0)
    children = worker_children(daemon.proc.pid)
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 25
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    assert "stopped" in daemon.log()


@pytest.mark.slow
def test_missed_runs_coalesce_into_one(tmp_path: Path, daemon_factory: Callable[[Path], DaemonProcess]) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy()])
    daemon = daemon_factory(fast_config(tmp_path, root, check_intervals={"passwd-exists": "3s", "no-such-file": "3s"}))
    daemon.wait_for(lambda: daemon.runs() >= 1, 30, "a first run")
    daemon.wait_for(lambda: not worker_children(daemon.proc.pid), 30, "the worker to finish")
    # a laptop asleep: the daemon frozen through six intervals
    daemon.proc.send_signal(signal.SIGSTOP)
    time.sleep(18)
    before = daemon.runs()
    daemon.proc.send_signal(signal.SIGCONT)
    daemon.wait_for(lambda: daemon.runs() > before, 30, "the run after waking")
    # Six missed runs would now follow back to back (a run takes well under a second); coalesced there is
    # one, and at most one more if the 3 s schedule comes round inside this window.
    time.sleep(2.5)
    assert daemon.runs() - before <= 2
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sighup_reads_the_new_schedule(tmp_path: Path, daemon_factory: Callable[[Path], DaemonProcess]) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy()])
    config = fast_config(tmp_path, root, check_intervals={})
    daemon = daemon_factory(config)
    daemon.wait_for(lambda: "schedule: 2 checks in 1 job(s) (2 every 21600s)" in daemon.log(), 30, "the schedule")
    fast_config(tmp_path, root, check_intervals={"no-such-file": "2s"})  # rewrites config.yaml
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: "(1 every 2s, 1 every 21600s)" in daemon.log(), 30, "the new schedule")
    daemon.wait_for(lambda: daemon.runs() >= 1, 30, "a run on the new schedule")
    assert daemon.stop() == 0


def test_run_refuses_to_start_unenrolled(tmp_path: Path) -> None:
    config = agent_config(tmp_path, tmp_path / "nothing")
    result = run_cli("rampart-agent", "--config", str(config), "run", timeout=60)
    assert result.returncode == 2 and "not enrolled" in result.stderr


def test_run_once_fails_when_results_cannot_be_delivered(tmp_path: Path) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy()])
    result = run_cli("rampart-agent", "--config", str(agent_config(tmp_path, root)), "run", "--once", timeout=60)
    assert result.returncode == 1
    assert "2 results" in result.stderr and "1 pending" in result.stderr
    with Spool(StatePaths(root).spool, 1 << 30) as spool:
        assert spool.stats().results == 2


def test_the_daemon_module_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys, agent.cli, agent.daemon; "
        "heavy = {'requests', 'cryptography', 'yaml', 'jsonschema', 'psutil', 'checks.policy.model'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_with_no_splay_the_first_run_and_check_in_are_at_start(
    tmp_path: Path, daemon_factory: Callable[[Path], DaemonProcess]
) -> None:
    root = tmp_path / "state"
    make_state(root, collector_url=closed_port_url(), policies=[small_policy(interval="6h")])
    daemon = daemon_factory(fast_config(tmp_path, root, check_intervals={}, checkin_interval="1h"))
    daemon.wait_for(lambda: daemon.runs() >= 1 and "checkin:" in daemon.log(), 30, "the first run and check-in")
    assert daemon.stop() == 0


def test_run_with_a_bad_config_says_where_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"agent:\n  state_dir: {tmp_path}\n  checkin_interval: hourly\n", encoding="utf-8")
    for args in (("run",), ("run", "--once")):
        result = run_cli("rampart-agent", "--config", str(config), *args, timeout=60)
        assert result.returncode == 2
        assert f"{config}:3: agent.checkin_interval: invalid duration 'hourly'" in result.stderr
