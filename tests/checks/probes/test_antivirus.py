"""antivirus: Defender and the Security Center, XProtect, Defender for Endpoint and ClamAV; live here."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from checks.probes.antivirus.darwin import collect_antivirus_darwin
from checks.probes.antivirus.linux import collect_antivirus_linux
from checks.probes.antivirus.parse import decode_product_state, parse_mdatp_health, parse_windows_antivirus
from checks.probes.common import parse_timestamp
from checks.probes.host import ProbeError
from checks.probes.local import LocalHost
from checks.probes.replay import ReplayHost
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "antivirus"
NOW = parse_timestamp("2024-06-13T12:00:00Z") or 0.0
DESKTOP = DATA / "hosts" / "debian12-desktop-gnome-clamav"
SERVER = DATA / "hosts" / "debian12-server-mdatp"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_defender_states() -> None:
    docs = parse_windows_antivirus(json.loads(fixture("windows-defender-docs-example.json")), NOW)
    assert docs["realtime_enabled"] is True and docs["tamper_protected"] is None
    assert docs["signature_age_days"] == (NOW - (parse_timestamp("2013-07-30T03:01:45Z") or 0)) // 86400
    off = parse_windows_antivirus(json.loads(fixture("windows-defender-realtime-off.json")), NOW)
    assert off["realtime_enabled"] is False and off["signature_age_days"] == 9
    tamper = parse_windows_antivirus(json.loads(fixture("windows-defender-2022-tamper-off.json")), NOW)
    assert tamper["tamper_protected"] is False and tamper["mode"] == "Normal"


def test_passive_defender_defers_to_the_registered_product() -> None:
    facts = parse_windows_antivirus(json.loads(fixture("windows-defender-passive-thirdparty.json")), NOW)
    assert facts["product"] == "Sophos Anti-Virus" and facts["realtime_enabled"] is True
    assert decode_product_state(266240) == (True, True)
    assert decode_product_state(393472) == (False, True)  # Defender, off
    assert decode_product_state(397584) == (True, False)  # on, signatures out of date


def test_no_antivirus_status_is_an_error() -> None:
    with pytest.raises(ProbeError, match="no antivirus status"):
        parse_windows_antivirus(json.loads(fixture("windows-server-no-security-center.json")), NOW)


def test_xprotect_and_linux() -> None:
    mac = collect_antivirus_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert (mac["product"], mac["signature_version"], mac["realtime_enabled"]) == ("XProtect", "2140", True)
    live = collect_antivirus_linux(LocalHost(), {})
    if not any(shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin") for t in ("clamd", "clamscan", "mdatp")):
        assert live["installed"] is False and live["product"] is None


# --- Linux parity: ClamAV and Defender for Endpoint through the live collector on recorded Debian hosts ---


def test_mdatp_health_through_the_collector() -> None:
    facts = collect_antivirus_linux(ReplayHost(SERVER), {})
    assert facts["product"] == "Microsoft Defender for Endpoint"
    assert (facts["realtime_enabled"], facts["service_running"], facts["updates_automatic"]) == (True, True, True)
    assert (facts["signature_age_days"], facts["signature_version"]) == (0, "1.411.353.0")
    assert facts["tamper_protected"] is True
    stale = parse_mdatp_health(fixture("mdatp-health-passive-stale.txt"))
    assert (stale["realtime_enabled"], stale["mode"], stale["signature_age_days"]) == (False, "Passive Mode", 10)
    assert (stale["service_running"], stale["updates_automatic"]) == (False, False)
    assert any("definitions_status is stale" in n for n in stale["notes"])
    with pytest.raises(ProbeError, match="unrecognised `mdatp health` output"):
        parse_mdatp_health("ERROR: Could not connect to the daemon\n")
    odd = parse_mdatp_health("healthy : true\ndefinitions_updated_minutes_ago : ²\n")
    assert odd["signature_age_days"] is None and "signature_age_days" in odd["unknown_because"]


def test_clamav_just_installed_and_running(tmp_path: Path) -> None:
    fresh = collect_antivirus_linux(ReplayHost(DESKTOP), {})
    assert (fresh["product"], fresh["realtime_enabled"], fresh["service_running"]) == ("ClamAV", False, False)
    assert fresh["signature_age_days"] is None and "freshclam" in fresh["unknown_because"]["signature_age_days"]
    # The same machine a day later: daemons running, daily.cld refreshed an hour ago.
    spec = json.loads((DESKTOP / "host.json").read_text())
    spec["processes"] += [
        {"pid": n, "name": name, "user": "clamav", "cmdline": [name]}
        for n, name in ((900, "clamd"), (901, "freshclam"), (902, "clamonacc"))
    ]
    spec["files"]["/var/lib/clamav/daily.cld"] = {"content": "", "mtime": time.time() - 3600}
    spec["commands"] = [
        {**c, "stdout_file": str((DESKTOP / c["stdout_file"]).resolve())} if "stdout_file" in c else c
        for c in spec["commands"]
    ]
    (tmp_path / "host.json").write_text(json.dumps(spec))
    running = collect_antivirus_linux(ReplayHost(tmp_path), {})
    assert (running["realtime_enabled"], running["service_running"], running["updates_automatic"]) == (True, True, True)
    assert running["signature_age_days"] == 0 and running["unknown_because"] == {}
