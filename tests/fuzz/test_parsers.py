"""Every parser of recorded command output, fed what a broken, hostile or unexpected machine might print.

Each parser gets arbitrary text, and its own recorded real outputs (tests/data/probes) cut short, with
lines dropped, doubled or garbled; the JSON parsers also get arbitrary JSON values and recorded JSON with
values replaced. A parser may return facts or raise ProbeError (the check is then an `error` with the
reason); any other exception is a defect: the probe would crash instead of saying what it could not read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.probes import common, windows
from checks.probes.antivirus import parse as antivirus
from checks.probes.disk_encryption import parse_linux as disk_encryption_linux
from checks.probes.disk_encryption import parse_macos as disk_encryption_macos
from checks.probes.disk_encryption import parse_windows as disk_encryption_windows
from checks.probes.firewall import parse as firewall
from checks.probes.host import ProbeError
from checks.probes.local_admins import parse as local_admins
from checks.probes.os import parse as os_parse
from checks.probes.package import parse as package_parse
from checks.probes.password_policy import parse as password_policy
from checks.probes.patch_level import parse_apt, parse_macos, parse_reboot, parse_rpm, parse_windows, parse_zypper
from checks.probes.screen_lock import parse as screen_lock
from checks.probes.service import parse as service_parse
from checks.probes.sshd import parse as sshd_parse
from checks.probes.time_sync import parse as time_sync_parse
from tests.reliability.figures import Figures

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

PROBES = Path(__file__).resolve().parents[1] / "data" / "probes"
NOW = 1_790_000_000.0


def recorded(pattern: str) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(PROBES.rglob(pattern)) if p.is_file()]


ALL_TEXT = [t for t in recorded("*.txt") + recorded("*.source") + recorded("*.stderr")]
ALL_JSON = [t for t in recorded("*.json")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@st.composite
def mangled(draw: st.DrawFn, corpus: list[str]) -> str:
    """A recorded output, damaged the ways real output is: cut short, lines lost, doubled or garbled."""
    text = draw(st.sampled_from(corpus or [""]))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "double", "garble", "replace"]))
        if action == "drop":
            del lines[index]
        elif action == "double":
            lines.insert(index, lines[index])
        elif action == "garble":
            line = lines[index]
            at = draw(st.integers(0, max(0, len(line) - 1)))
            lines[index] = line[:at] + draw(st.text(max_size=8)) + line[at + 1 :]
        else:
            lines[index] = draw(st.text(max_size=60)) + "\n"
    joined = "".join(lines)
    return joined[: draw(st.integers(0, len(joined)))] if draw(st.booleans()) else joined


@st.composite
def mangled_json(draw: st.DrawFn, corpus: list[str]) -> Any:
    """A recorded JSON document with some values replaced by others of any type."""
    data = json.loads(draw(st.sampled_from(corpus))) if corpus else draw(json_values)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (draw(json_values) if draw(st.integers(0, 6)) == 0 else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return draw(json_values) if draw(st.integers(0, 4)) == 0 else node

    return walk(data)


def text_input(*patterns: str) -> st.SearchStrategy[str]:
    corpus = [t for pattern in patterns for t in recorded(pattern)] or ALL_TEXT
    return st.one_of(st.text(max_size=400), mangled(corpus), mangled(ALL_TEXT))


def data_input(*patterns: str) -> st.SearchStrategy[Any]:
    corpus = [t for pattern in patterns for t in recorded(pattern)]
    return st.one_of(json_values, mangled_json(corpus)) if corpus else json_values


Case = tuple[str, Callable[..., Any], st.SearchStrategy[tuple[Any, ...]]]


def one(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(strategy)


TEXT = text_input()
PARSERS: list[Case] = [
    ("local_admins.parse.parse_linux_admins", local_admins.parse_linux_admins, st.tuples(TEXT, TEXT)),
    ("local_admins.parse.parse_windows_admins", local_admins.parse_windows_admins, one(data_input())),
    ("local_admins.parse.parse_dscl_group_membership", local_admins.parse_dscl_group_membership, one(TEXT)),
    ("password_policy.parse.parse_linux_password_policy", password_policy.parse_linux_password_policy,
     st.tuples(st.none() | TEXT, st.none() | TEXT, st.none() | TEXT)),
    ("password_policy.parse.parse_linux_password_policy (PAM stacks)", password_policy.parse_linux_password_policy,
     st.tuples(st.none() | TEXT, st.lists(TEXT, max_size=3), st.none() | TEXT,
               st.none() | text_input("debian12-common-password*"), st.none() | text_input("debian12-common-auth*"))),
    ("password_policy.parse.parse_pam_stack", password_policy.parse_pam_stack, one(text_input("debian12-common-*"))),
    ("screen_lock.parse.parse_gsettings_value", screen_lock.parse_gsettings_value,
     one(text_input("debian12-gsettings-*"))),
    ("password_policy.parse.parse_windows_password_policy", password_policy.parse_windows_password_policy,
     one(data_input())),
    ("screen_lock.parse.parse_windows_screen_lock", screen_lock.parse_windows_screen_lock, one(data_input())),
    ("screen_lock.parse.parse_sysadminctl_screenlock", screen_lock.parse_sysadminctl_screenlock,
     one(text_input("*sysadminctl*"))),
    ("antivirus.parse.decode_product_state", antivirus.decode_product_state, one(st.integers(-(2**40), 2**40))),
    ("antivirus.parse.parse_windows_antivirus", antivirus.parse_windows_antivirus,
     st.tuples(data_input("windows-defender*.json", "windows-server-no*.json"), st.just(NOW))),
    ("antivirus.parse.parse_plist_version", antivirus.parse_plist_version, one(TEXT)),
    ("antivirus.parse.parse_mdatp_health", antivirus.parse_mdatp_health, one(text_input("mdatp-health-*"))),
    ("disk_encryption.parse_linux.parse_lsblk", disk_encryption_linux.parse_lsblk,
     one(st.one_of(text_input("*lsblk.json"), data_input("*lsblk.json").map(json.dumps)))),
    ("disk_encryption.parse_linux.parse_mountinfo", disk_encryption_linux.parse_mountinfo,
     one(text_input("*mountinfo.txt"))),
    ("disk_encryption.parse_linux.parse_swaps", disk_encryption_linux.parse_swaps, one(text_input("*swaps.txt"))),
    ("disk_encryption.parse_windows.parse_bitlocker", disk_encryption_windows.parse_bitlocker,
     one(data_input("windows-bitlocker*.json"))),
    ("disk_encryption.parse_macos.parse_fdesetup_status", disk_encryption_macos.parse_fdesetup_status,
     one(text_input("*fdesetup*"))),
    ("firewall.parse.parse_nft_ruleset", firewall.parse_nft_ruleset,
     one(st.one_of(text_input("nft-*.json"), data_input("nft-*.json").map(json.dumps)))),
    ("firewall.parse.parse_iptables_save", firewall.parse_iptables_save, one(text_input("iptables*"))),
    ("firewall.parse.parse_windows_firewall", firewall.parse_windows_firewall,
     one(data_input("windows-profiles*.json", "windows-domain*.json", "windows-numeric*.json"))),
    ("firewall.parse.parse_socketfilterfw", firewall.parse_socketfilterfw,
     st.tuples(text_input("*socketfilterfw*"), text_input("*socketfilterfw*"))),
    ("common.parse_key_values", common.parse_key_values, st.tuples(TEXT, st.sampled_from(["=", ":", " "]))),
    ("service.parse.parse_systemctl_show", service_parse.parse_systemctl_show, one(TEXT)),
    ("service.parse.parse_windows_service", service_parse.parse_windows_service,
     one(data_input("windows-service*.json"))),
    ("service.parse.parse_launchctl_list", service_parse.parse_launchctl_list, st.tuples(TEXT, st.text(max_size=30))),
    ("package.parse.parse_dpkg_query", package_parse.parse_dpkg_query, st.tuples(TEXT, st.integers(-1, 255))),
    ("package.parse.parse_rpm_query", package_parse.parse_rpm_query, st.tuples(TEXT, st.integers(-1, 255))),
    ("os.parse.parse_os_release", os_parse.parse_os_release, one(TEXT)),
    ("os.parse.parse_windows_os", os_parse.parse_windows_os, one(data_input())),
    ("patch_level.parse_apt.parse_dpkg_status", parse_apt.parse_dpkg_status, one(TEXT)),
    ("patch_level.parse_apt.parse_apt_cache_policy", parse_apt.parse_apt_cache_policy, one(TEXT)),
    ("patch_level.parse_apt.parse_dpkg_log_last_upgrade", parse_apt.parse_dpkg_log_last_upgrade, one(TEXT)),
    ("patch_level.parse_reboot.parse_btime", parse_reboot.parse_btime, one(TEXT)),
    ("patch_level.parse_rpm.parse_check_update", parse_rpm.parse_check_update, one(TEXT)),
    ("patch_level.parse_rpm.parse_updateinfo_list", parse_rpm.parse_updateinfo_list, one(TEXT)),
    ("patch_level.parse_rpm.parse_updateinfo_dates", parse_rpm.parse_updateinfo_dates, one(TEXT)),
    ("patch_level.parse_rpm.parse_metadata_age", parse_rpm.parse_metadata_age, one(TEXT)),
    ("patch_level.parse_rpm.parse_rpm_last_install", parse_rpm.parse_rpm_last_install, one(TEXT)),
    ("patch_level.parse_zypper.parse_zypper_xml", parse_zypper.parse_zypper_xml, one(TEXT)),
    ("patch_level.parse_windows.parse_windows_update", parse_windows.parse_windows_update,
     st.tuples(data_input(), st.just(NOW))),
    ("patch_level.parse_macos.parse_old_plist", parse_macos.parse_old_plist, one(TEXT)),
    ("patch_level.parse_macos.parse_softwareupdate_prefs", parse_macos.parse_softwareupdate_prefs,
     st.tuples(TEXT, st.just(NOW))),
    ("patch_level.parse_macos.parse_install_history", parse_macos.parse_install_history, one(data_input())),
    ("sshd.parse.parse_sshd_t", sshd_parse.parse_sshd_t, one(text_input("*sshd-T*"))),
    ("time_sync.parse.parse_timedatectl_show", time_sync_parse.parse_timedatectl_show,
     one(text_input("timedatectl-show-*"))),
    ("windows.parse_json_output", windows.parse_json_output, one(TEXT)),
    ("common.parse_timestamp", common.parse_timestamp, one(st.none() | TEXT)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "parse", "arguments"), [pytest.param(*case, id=case[0]) for case in PARSERS])
def test_parser_returns_facts_or_a_probe_error(
    name: str, parse: Callable[..., Any], arguments: st.SearchStrategy[tuple[Any, ...]], figures: Figures
) -> None:
    """A parser of recorded command output returns facts or raises ProbeError, whatever it reads."""
    figures.scenario = f"parser-{name}"

    @given(arguments)
    def property(args: tuple[Any, ...]) -> None:
        figures.add("examples")
        try:
            parse(*args)
        except ProbeError:
            figures.add("probe_errors")

    property()


# Each crash the fuzzer found (AttributeError or TypeError on valid JSON of an unexpected shape), kept as a
# reproducer: the probe now says what it could not read instead of naming a Python exception.
REPRODUCERS: dict[str, tuple[Callable[..., object], tuple[object, ...]]] = {
    "disk_encryption.parse_linux.parse_lsblk": (disk_encryption_linux.parse_lsblk, ("null",)),
    "disk_encryption.parse_windows.parse_bitlocker": (disk_encryption_windows.parse_bitlocker, ({"Volumes": [True]},)),
    "firewall.parse.parse_nft_ruleset": (firewall.parse_nft_ruleset, ("null",)),
    "service.parse.parse_windows_service": (service_parse.parse_windows_service, (True,)),
    "firewall.parse.parse_windows_firewall": (firewall.parse_windows_firewall, ({"Profiles": [True]},)),
}


@pytest.mark.parametrize("name", list(REPRODUCERS))
def test_known_parser_crash_is_a_probe_error(name: str) -> None:
    """Each crash the fuzzer found, replayed: a ProbeError saying what was not understood."""
    parse, args = REPRODUCERS[name]
    with pytest.raises(ProbeError, match="not a JSON object|not an object|expected an object"):
        parse(*args)


def test_every_parser_is_fuzzed() -> None:
    """A new parse_* function in checks/probes cannot escape the table above."""
    import inspect

    from checks import probes

    found = set()
    root = Path(probes.__file__).parent
    # The shared modules and the endpoint probes' packages (the cloud probes read JSON, not command output).
    for module_path in sorted(p for p in root.rglob("*.py") if "cloud" not in p.relative_to(root).parts):
        name = ".".join(module_path.relative_to(root).with_suffix("").parts)
        module = __import__(f"checks.probes.{name}", fromlist=["_"])
        for attribute, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                if attribute.startswith(("parse_", "decode_")):
                    found.add(f"{name}.{attribute}")
    assert found <= {name for name, _, _ in PARSERS}, sorted(found - {name for name, _, _ in PARSERS})
