"""os_support: the end-of-life table and how each OS maps onto it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from checks.probes.local import LocalHost
from checks.probes.os.parse import parse_os_release
from checks.probes.os_support.darwin import collect_os_support_darwin
from checks.probes.os_support.linux import collect_os_support_linux
from checks.probes.os_support.parse import eol_entries, judge_support, linux_cycle, macos_cycle, windows_cycle
from checks.probes.os_support.windows import collect_os_support_windows
from checks.probes.replay import ReplayHost
from tests.conftest import DATA


def test_every_entry_names_its_source_and_a_valid_date() -> None:
    seen = set()
    for entry in eol_entries():
        assert entry["source"].startswith("https://"), entry
        dt.date.fromisoformat(entry["eol"])
        assert (entry["product"], entry["cycle"]) not in seen
        seen.add((entry["product"], entry["cycle"]))
    products = {e["product"] for e in eol_entries()}
    assert {"debian", "ubuntu", "rhel", "rocky", "almalinux", "windows", "windows_server", "macos"} <= products


@pytest.mark.parametrize(
    ("caption", "build", "expected"),
    [
        ("Microsoft Windows 11 Enterprise", "26100", ("windows", "11-24H2-enterprise")),
        ("Microsoft Windows 11 Pro", "22631", ("windows", "11-23H2")),
        ("Microsoft Windows 11 Education", "22621", ("windows", "11-22H2-enterprise")),
        ("Microsoft Windows 10 Pro", "19045", ("windows", "10-22H2")),
        ("Microsoft Windows 10 Enterprise LTSC 2021", "19044", ("windows", "10-ltsc-2021")),
        ("Microsoft Windows 11 IoT Enterprise LTSC", "26100", ("windows", "11-ltsc-2024")),
        ("Microsoft Windows Server 2022 Standard", "20348", ("windows_server", "2022")),
        ("Microsoft Windows Server 2025 Datacenter", "26100", ("windows_server", "2025")),
        ("Microsoft Windows 11 Pro Insider Preview", "27500", ("windows", None)),
    ],
)
def test_windows_cycles(caption: str, build: str, expected: tuple[str, str | None]) -> None:
    assert windows_cycle(caption, build) == expected


def test_linux_and_macos_cycles() -> None:
    assert linux_cycle("debian", [], "12") == ("debian", "12")
    assert linux_cycle("ubuntu", ["debian"], "22.04") == ("ubuntu", "22.04")
    assert linux_cycle("rhel", ["fedora"], "9.4") == ("rhel", "9")
    assert linux_cycle("rocky", ["rhel", "centos", "fedora"], "8.10") == ("rocky", "8")
    assert linux_cycle("linuxmint", ["ubuntu", "debian"], "21.3")[0] == "ubuntu"
    assert macos_cycle("14.5") == "14" and macos_cycle("10.15.7") == "10.15"


def test_judgement_against_a_fixed_day() -> None:
    facts = judge_support("Debian 12", "debian", "12", dt.date(2026, 11, 26))
    assert (facts["supported"], facts["days_to_eol"], facts["eol_date"]) == (True, 582, "2028-06-30")
    assert "wiki.debian.org" in facts["eol_source"]
    passed = judge_support("Windows 10", "windows", "10-22H2", dt.date(2026, 11, 26))
    assert passed["supported"] is False and passed["days_to_eol"] < 0
    unknown = judge_support("Plan 9", "plan9", "4", dt.date(2026, 11, 26))
    assert unknown["supported"] is None and unknown["eol_source"] is None
    estimated = judge_support("macOS 15", "macos", "15", dt.date(2026, 11, 26))
    assert estimated["eol_estimated"] is True


def test_recorded_hosts() -> None:
    today = dt.datetime.now(dt.UTC).date()
    windows = collect_os_support_windows(ReplayHost(DATA / "hosts" / "windows11-laptop"), {})
    assert windows["cycle"] == "11-24H2-enterprise"
    assert windows["days_to_eol"] == (dt.date(2027, 10, 12) - today).days
    server = collect_os_support_windows(ReplayHost(DATA / "hosts" / "windows-server-2022"), {})
    assert (server["product"], server["eol_date"]) == ("windows_server", "2031-10-14")
    mac = collect_os_support_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert (mac["cycle"], mac["supported"]) == ("10.15", False)
    rhel = collect_os_support_linux(ReplayHost(DATA / "hosts" / "rhel9-server"), {})
    assert (rhel["product"], rhel["cycle"], rhel["eol_date"]) == ("rhel", "9", "2032-05-31")


def test_live_matches_os_release() -> None:
    release = parse_os_release(Path("/etc/os-release").read_text())
    facts = collect_os_support_linux(LocalHost(), {})
    assert facts["os"] == release.get("PRETTY_NAME")
    version = release.get("VERSION_ID", "")
    if release.get("ID") == "debian":
        assert facts["cycle"] == re.split(r"\.", version)[0]
        assert facts["supported"] is not None


def test_a_unicode_digit_build_is_not_a_crash() -> None:
    assert windows_cycle("Microsoft Windows 11 Pro", "²")[0] == "windows"
