"""The shipped service definitions: valid for their tools, hardened, and pointing at the real command."""

from __future__ import annotations

import configparser
import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import BIN

DEPLOY = Path(__file__).resolve().parents[2] / "agent" / "deploy"
TASK_NS = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


UNITS = ("rampart-agent.service", "rampart-agent-once.service", "rampart-agent.timer")
AGENT = "/opt/rampart-agent/bin/rampart-agent"


def unit(name: str = "rampart-agent.service") -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / name)
    return parser


def service_lines(name: str) -> list[str]:
    """The [Service] settings of a unit, in order, without comments."""
    text = (DEPLOY / name).read_text().split("[Service]\n", 1)[1].split("\n[", 1)[0]
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_and_the_timer_verify_cleanly(tmp_path: Path) -> None:
    assert f"ExecStart={AGENT} --config /etc/rampart/config.yaml run\n" in (DEPLOY / UNITS[0]).read_text()
    assert f"ExecStart={AGENT} --config /etc/rampart/config.yaml run --once\n" in (DEPLOY / UNITS[1]).read_text()
    # verify needs the program to exist: point it at this installation's rampart-agent
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (tmp_path / name).write_text(text.replace(AGENT, str(BIN / "rampart-agent")))
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if "rampart-agent" in line]
    assert problems == []  # no unknown keys, no bad values, the timer's unit found


def test_the_unit_runs_as_its_user_with_what_the_probes_need_and_no_more() -> None:
    service = unit()["Service"]
    assert service["User"] == service["Group"] == "rampart"
    # Reading any file (sshd's host keys, /etc/shadow) and the firewall over netlink: nothing else.
    assert service["CapabilityBoundingSet"] == service["AmbientCapabilities"] == "CAP_DAC_READ_SEARCH CAP_NET_ADMIN"
    assert service["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6 AF_NETLINK"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "rampart-agent" and service["StateDirectoryMode"] == "0700"
    assert service["UMask"] == "0077" and service["KillMode"] == "mixed"
    assert service["PrivateTmp"] == "no"  # the baseline judges the real /tmp, read-only here, so:
    assert service["Environment"] == "TMPDIR=/run/rampart-agent" and service["RuntimeDirectory"] == "rampart-agent"
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    # Before enrolment there is nothing to run: skipped, not failed and restarted every 30 s.
    assert unit()["Unit"]["ConditionPathExists"] == "/var/lib/rampart-agent/agent.json"


def test_the_oneshot_has_the_daemons_restrictions_line_for_line() -> None:
    def restrictions(name: str) -> list[str]:
        lines = service_lines(name)
        return [line.replace("rampart-agent-once", "rampart-agent") for line in lines[lines.index("User=rampart") :]]

    assert restrictions("rampart-agent-once.service") == restrictions("rampart-agent.service")
    once = unit("rampart-agent-once.service")
    assert once["Service"]["Type"] == "oneshot" and "Restart" not in once["Service"]
    assert (
        once["Service"]["Environment"] == "TMPDIR=/run/rampart-agent-once"
    )  # its own: it may overlap the daemon's end
    assert once["Unit"]["ConditionPathExists"] == "/var/lib/rampart-agent/agent.json"
    assert "Install" not in once  # started by the timer only


def test_the_timer_runs_the_oneshot_hourly_with_a_spread_instead_of_the_daemon() -> None:
    timer = unit("rampart-agent.timer")
    assert timer["Timer"]["Unit"] == "rampart-agent-once.service"
    assert timer["Timer"]["OnUnitActiveSec"] == "1h" and timer["Timer"]["RandomizedDelaySec"] == "10min"
    assert timer["Timer"]["OnBootSec"] == "5min"
    assert timer["Unit"]["Conflicts"] == "rampart-agent.service"  # one or the other, never both
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_launchd_plist_is_valid_and_runs_the_daemon() -> None:
    with (DEPLOY / "org.rampart.agent.plist").open("rb") as handle:
        job = plistlib.load(handle)
    assert job["Label"] == "org.rampart.agent"
    assert job["ProgramArguments"] == [AGENT, "--config", "/etc/rampart/config.yaml", "run"]
    assert job["RunAtLoad"] is True and job["KeepAlive"] == {"SuccessfulExit": False}
    assert job["Umask"] == 0o077 and job["ProcessType"] == "Background"


def test_windows_task_is_valid_xml_running_the_daemon_as_system() -> None:
    task = ET.parse(DEPLOY / "rampart-agent-task.xml").getroot()
    assert task.tag == f"{TASK_NS}Task"
    assert task.findtext(f"{TASK_NS}Principals/{TASK_NS}Principal/{TASK_NS}UserId") == "S-1-5-18"
    command = task.findtext(f"{TASK_NS}Actions/{TASK_NS}Exec/{TASK_NS}Command")
    arguments = task.findtext(f"{TASK_NS}Actions/{TASK_NS}Exec/{TASK_NS}Arguments")
    assert command is not None and command.endswith("rampart-agent.exe")
    assert arguments is not None and arguments.endswith(" run")
    settings = task.find(f"{TASK_NS}Settings")
    assert settings is not None
    assert settings.findtext(f"{TASK_NS}ExecutionTimeLimit") == "PT0S"
    assert settings.findtext(f"{TASK_NS}RestartOnFailure/{TASK_NS}Interval") == "PT5M"
    assert task.find(f"{TASK_NS}Triggers/{TASK_NS}BootTrigger") is not None
