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


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "rampart-agent.service")
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies_cleanly(tmp_path: Path) -> None:
    text = (DEPLOY / "rampart-agent.service").read_text()
    assert "ExecStart=/opt/rampart/bin/rampart-agent --config /etc/rampart/config.yaml run" in text
    # verify needs the program to exist: point it at this installation's rampart-agent
    local = tmp_path / "rampart-agent.service"
    local.write_text(text.replace("/opt/rampart/bin/rampart-agent", str(BIN / "rampart-agent")))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if "rampart-agent.service" in line]
    assert problems == []  # no unknown keys, no bad values


def test_systemd_unit_is_hardened_and_reads_only() -> None:
    service = unit()["Service"]
    assert service["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "rampart-agent" and service["StateDirectoryMode"] == "0700"
    assert service["UMask"] == "0077" and service["KillMode"] == "mixed"
    assert service["PrivateTmp"] == "no"  # the baseline judges the real /tmp
    assert service["Restart"] == "on-failure"


def test_launchd_plist_is_valid_and_runs_the_daemon() -> None:
    with (DEPLOY / "org.rampart.agent.plist").open("rb") as handle:
        job = plistlib.load(handle)
    assert job["Label"] == "org.rampart.agent"
    assert job["ProgramArguments"] == ["/opt/rampart/bin/rampart-agent", "--config", "/etc/rampart/config.yaml", "run"]
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
