"""The time_sync probe on recorded `timedatectl show` output (tests/data/probes/time_sync/), and as a policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.policy.evaluate import CachingRunner, evaluate_policy
from checks.policy.loader import load_policy_text
from checks.probes import registry
from checks.probes.host import CommandMissing, ProbeError
from checks.probes.replay import ReplayHost
from checks.probes.time_sync.linux import collect_time_sync_linux
from checks.probes.time_sync.parse import parse_timedatectl_show
from checks.results import Status, Subject, SubjectKind
from tests.conftest import DATA

RECORDED = DATA / "probes" / "time_sync"


def replay(tmp_path: Path, *, stdout: str | None = None, stderr: str | None = None, returncode: int = 0) -> ReplayHost:
    command: dict[str, object] = {"argv": ["/usr/bin/timedatectl", "show"], "returncode": returncode}
    if stdout is not None:
        command["stdout_file"] = str(RECORDED / stdout)
    if stderr is not None:
        command["stderr_file"] = str(RECORDED / stderr)
    spec = {"platform": "linux", "which": {"timedatectl": "/usr/bin/timedatectl"}, "commands": [command]}
    (tmp_path / "host.json").write_text(json.dumps(spec))
    return ReplayHost(tmp_path)


def test_a_synchronised_clock() -> None:
    facts = parse_timedatectl_show((RECORDED / "timedatectl-show-synchronised.txt").read_text())
    assert facts == {
        "synchronized": True,
        "ntp_enabled": True,
        "can_ntp": True,
        "timezone": "Europe/London",
        "rtc_in_local_time": False,
    }


def test_a_clock_with_network_time_off(tmp_path: Path) -> None:
    facts = collect_time_sync_linux(replay(tmp_path, stdout="timedatectl-show-ntp-off.txt"), {})
    assert facts["synchronized"] is False and facts["ntp_enabled"] is False and facts["rtc_in_local_time"] is True


def test_without_systemd_the_error_says_why(tmp_path: Path) -> None:
    host = replay(tmp_path, stderr="debian12-container-no-systemd.stderr", returncode=1)
    with pytest.raises(ProbeError, match="systemd is not the init system here"):
        collect_time_sync_linux(host, {})


def test_without_timedatectl_the_command_is_missing(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"platform": "linux"}))
    with pytest.raises(CommandMissing, match="timedatectl is not installed"):
        collect_time_sync_linux(ReplayHost(tmp_path), {})


def test_output_that_is_not_timedatectl_is_an_error_not_a_guess() -> None:
    with pytest.raises(ProbeError, match="neither NTP nor NTPSynchronized"):
        parse_timedatectl_show("System clock synchronized: yes\n")


@pytest.mark.parametrize(
    ("recording", "status"),
    [("timedatectl-show-synchronised.txt", Status.PASS), ("timedatectl-show-ntp-off.txt", Status.FAIL)],
)
def test_the_example_check_judges_the_recordings(tmp_path: Path, recording: str, status: Status) -> None:
    spec = registry.get("time_sync")
    assert spec is not None and spec.platforms == ("linux",)
    policy = load_policy_text('id: example\nversion: "1"\ntitle: Example\nchecks:\n' + _indented(spec.example))
    evaluation = evaluate_policy(
        policy,
        subject=Subject(SubjectKind.HOST, "test-host"),
        platform="linux",
        run_probe=CachingRunner(replay(tmp_path, stdout=recording)),
    )
    assert [r.status for r in evaluation.results] == [status]


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())
