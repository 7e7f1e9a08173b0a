"""firewall: nftables/iptables rulesets recorded here, Windows ActiveStore profiles, macOS, and this machine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from checks.probes.firewall.darwin import collect_firewall_darwin
from checks.probes.firewall.linux import collect_firewall_linux
from checks.probes.firewall.parse import (
    parse_iptables_save,
    parse_nft_ruleset,
    parse_socketfilterfw,
    parse_windows_firewall,
)
from checks.probes.firewall.windows import collect_firewall_windows
from checks.probes.host import AccessDenied, ProbeError
from checks.probes.local import LocalHost
from checks.probes.replay import ReplayHost
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "firewall"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "ipv4", "ipv6"),
    [
        ("nft-inet-default-drop.json", True, True),
        ("nft-firewalld-reject.json", True, True),  # policy accept, but ends in an unconditional reject
        ("nft-ipv4-only-drop.json", True, False),
        ("nft-debian-default-accept.json", False, False),  # an input chain that accepts everything
        ("nft-empty-ruleset.json", False, False),
    ],
)
def test_nft_inbound_default(name: str, ipv4: bool, ipv6: bool) -> None:
    assert parse_nft_ruleset(fixture(name)) == {"ipv4": ipv4, "ipv6": ipv6}


def test_iptables_policy_and_final_rule() -> None:
    assert parse_iptables_save(fixture("iptables-save-ufw.txt")) is True
    assert parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n") is False
    final_reject = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n"
    assert parse_iptables_save(final_reject) is True
    conditional = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j DROP\nCOMMIT\n"
    assert parse_iptables_save(conditional) is False
    # Only the filter table decides: a DROP policy in another table does not count.
    assert parse_iptables_save("*raw\n:INPUT DROP [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") is False


def replay(tmp_path: Path, spec: Mapping[str, object]) -> ReplayHost:
    (tmp_path / "host.json").write_text(json.dumps(spec))
    return ReplayHost(tmp_path)


def test_rhel_recording_firewalld_on_nftables() -> None:
    facts = collect_firewall_linux(ReplayHost(DATA / "hosts" / "rhel9-server"), {})
    assert (facts["enabled"], facts["backend"], facts["manager"]) == (True, "nftables", "firewalld")


def test_ipv6_left_open_fails_unless_ipv6_is_off(tmp_path: Path) -> None:
    spec = {
        "platform": "linux",
        "which": {"nft": "/usr/sbin/nft"},
        "commands": [
            {"argv": ["nft", "-j", "list", "ruleset"], "stdout_file": str(FIXTURES / "nft-ipv4-only-drop.json")}
        ],
        "files": {"/proc/net/if_inet6": {"content": "x"}, "/proc/sys/net/ipv6/conf/all/disable_ipv6": {"content": "0"}},
    }
    assert collect_firewall_linux(replay(tmp_path, spec), {})["enabled"] is False
    spec["files"] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6": {"content": "1\n"}}
    assert collect_firewall_linux(replay(tmp_path, spec), {})["enabled"] is True


def test_nft_without_root_is_an_error_not_a_fail(tmp_path: Path) -> None:
    spec = {
        "platform": "linux",
        "which": {"nft": "/usr/sbin/nft"},
        "commands": [
            {
                "argv": ["nft", "-j", "list", "ruleset"],
                "returncode": 1,
                "stderr_file": str(FIXTURES / "nft-unprivileged.stderr"),
            }
        ],
    }
    with pytest.raises(AccessDenied, match="permission denied"):
        collect_firewall_linux(replay(tmp_path, spec), {})


def test_no_firewall_installed(tmp_path: Path) -> None:
    facts = collect_firewall_linux(replay(tmp_path, {"platform": "linux"}), {})
    assert (facts["enabled"], facts["backend"]) == (False, "none")
    spec = {"platform": "linux", "files": {"/proc/net/ip_tables_names": {"content": "filter\n"}}}
    with pytest.raises(ProbeError, match="iptables-save is not installed"):
        collect_firewall_linux(replay(tmp_path, spec), {})


def test_windows_active_store_profiles() -> None:
    enabled = parse_windows_firewall(json.loads(fixture("windows-profiles-enabled.json")))
    assert (enabled["enabled"], enabled["inbound_blocked"]) == (True, True)  # NotConfigured inbound = Block
    assert [p["active"] for p in enabled["profiles"]] == [True, False, False]
    disabled = parse_windows_firewall(json.loads(fixture("windows-profiles-disabled.json")))
    assert (disabled["enabled"], disabled["inbound_blocked"]) == (False, False)
    allow = parse_windows_firewall(json.loads(fixture("windows-domain-allow-inbound.json")))
    assert (allow["enabled"], allow["inbound_blocked"]) == (True, False)
    numeric = parse_windows_firewall(json.loads(fixture("windows-numeric-enums.json")))
    assert [p["enabled"] for p in numeric["profiles"]] == [True, True, False]
    stopped = parse_windows_firewall(json.loads(fixture("windows-service-stopped.json")))
    assert stopped["enabled"] is False  # every profile "on", but nothing enforces it


def test_windows_collector_reads_the_active_store() -> None:
    host = ReplayHost(DATA / "hosts" / "windows-server-2022")
    facts = collect_firewall_windows(host, {})
    assert facts["inbound_blocked"] is False
    from checks.probes.firewall.windows import WINDOWS_FIREWALL_SCRIPT

    assert "-PolicyStore ActiveStore" in WINDOWS_FIREWALL_SCRIPT


def test_macos_application_firewall() -> None:
    on = parse_socketfilterfw(
        fixture("macos-socketfilterfw-enabled.txt"), fixture("macos-socketfilterfw-stealth-on.txt")
    )
    assert on["enabled"] is True and "stealth mode is on" in on["notes"]
    off = parse_socketfilterfw(fixture("macos-socketfilterfw-disabled.txt"), "")
    assert off["enabled"] is False
    block = parse_socketfilterfw(fixture("macos-socketfilterfw-blockall.txt"), "")
    assert block["profiles"][0]["default_inbound"] == "block"
    with pytest.raises(ProbeError):
        parse_socketfilterfw("socketfilterfw: must be root\n", "")
    assert collect_firewall_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})["enabled"] is True


def test_live_firewall_matches_the_tools_present_here() -> None:
    host = LocalHost()
    try:
        facts = collect_firewall_linux(host, {})
    except AccessDenied:
        assert shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin") or shutil.which("iptables-save")
        return
    if shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is None and host.which("iptables-save") is None:
        assert (facts["backend"], facts["enabled"]) == ("none", False)
    else:
        assert facts["backend"] in ("nftables", "iptables")
