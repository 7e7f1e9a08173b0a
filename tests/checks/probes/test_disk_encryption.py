"""disk_encryption: LUKS/LVM mapping, BitLocker and FileVault states, and the live probe here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from checks.probes.disk_encryption.darwin import collect_disk_encryption_darwin
from checks.probes.disk_encryption.linux import collect_disk_encryption_linux
from checks.probes.disk_encryption.parse_linux import encryption_of, linux_volumes, parse_lsblk
from checks.probes.disk_encryption.parse_macos import parse_fdesetup_status
from checks.probes.disk_encryption.parse_windows import parse_bitlocker
from checks.probes.host import ProbeError
from checks.probes.local import LocalHost
from checks.probes.replay import ReplayHost
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "disk_encryption"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def by_mount(facts: dict[str, object]) -> dict[str, dict[str, object]]:
    return {v["mount"]: v for v in facts["volumes"]}  # type: ignore[attr-defined]


def test_lvm_on_luks_root_and_swap_are_encrypted_a_plain_data_disk_is_not() -> None:
    facts = linux_volumes(
        fixture("ubuntu-lvm-on-luks-lsblk.json"),
        fixture("ubuntu-lvm-on-luks-mountinfo.txt"),
        fixture("ubuntu-lvm-on-luks-swaps.txt"),
    )
    volumes = by_mount(facts)
    assert set(volumes) == {"/", "/data", "/dev/dm-2"}  # /boot, /boot/efi, the USB stick and snaps left out
    assert volumes["/"]["method"] == "luks" and volumes["/"]["compliant"] is True
    assert volumes["/dev/dm-2"]["kind"] == "swap" and volumes["/dev/dm-2"]["compliant"] is True
    assert volumes["/data"]["compliant"] is False and volumes["/data"]["status"] == "not_encrypted"
    assert facts["system_encrypted"] is True and facts["noncompliant"] == ["/data"]
    assert any("/boot/efi" in note for note in facts["notes"])


def test_a_volume_group_spanning_a_plain_disk_is_not_encrypted() -> None:
    devices = parse_lsblk(fixture("lvm-across-plain-and-luks-lsblk.json"))
    assert len(devices["dm-4"].parent_paths) == 2
    assert encryption_of(devices["dm-4"]) == (False, None)
    assert encryption_of(devices["dm-3"]) == (True, "luks")


def test_crypt_root_directly_on_a_partition_with_zram_swap() -> None:
    mountinfo = (
        "20 1 254:0 / / rw - ext4 /dev/mapper/armbian-root rw\n21 20 259:1 / /boot rw - ext4 /dev/nvme0n1p1 rw\n"
    )
    swaps = "Filename Type Size Used Priority\n/dev/zram0 partition 8000000 0 5\n"
    facts = linux_volumes(fixture("armbian-crypt-root-lsblk.json"), mountinfo, swaps)
    assert [v["mount"] for v in facts["volumes"]] == ["/"]
    assert facts["system_encrypted"] is True
    assert any("compressed memory" in note for note in facts["notes"])


def test_swap_file_inherits_the_filesystem_it_lives_on() -> None:
    swaps = "Filename Type Size Used Priority\n/swapfile file 2097148 0 -2\n"
    facts = linux_volumes(fixture("ubuntu-lvm-on-luks-lsblk.json"), fixture("ubuntu-lvm-on-luks-mountinfo.txt"), swaps)
    assert by_mount(facts)["/swapfile"]["compliant"] is True  # on the LUKS root
    swaps = "Filename Type Size Used Priority\n/data/swapfile file 2097148 0 -2\n"
    facts = linux_volumes(fixture("ubuntu-lvm-on-luks-lsblk.json"), fixture("ubuntu-lvm-on-luks-mountinfo.txt"), swaps)
    assert by_mount(facts)["/data/swapfile"]["compliant"] is False  # on the plain data disk


def test_recorded_vm_without_encryption() -> None:
    facts = linux_volumes(
        fixture("debian12-vm-lsblk.json"), fixture("debian12-vm-mountinfo.txt"), fixture("debian12-vm-swaps.txt")
    )
    assert facts["volumes"] == [
        {
            "mount": "/",
            "device": "vda",
            "kind": "system",
            "encrypted": False,
            "method": "none",
            "protection_on": False,
            "status": "not_encrypted",
            "percent": None,
            "compliant": False,
        }
    ]


def test_bitlocker_encrypted_with_protection_off_is_not_compliant() -> None:
    facts = parse_bitlocker(json.loads(fixture("windows-bitlocker-protection-off.json")))
    (volume,) = facts["volumes"]
    assert volume["encrypted"] is True and volume["protection_on"] is False
    assert volume["status"] == "suspended" and volume["compliant"] is False
    assert facts["system_encrypted"] is False


def test_bitlocker_encrypting_and_unencrypted_data_volume() -> None:
    facts = parse_bitlocker(json.loads(fixture("windows-bitlocker-encrypting.json")))
    volumes = by_mount(facts)
    assert volumes["C:"]["status"] == "encrypting" and volumes["C:"]["percent"] == 47.0
    assert volumes["C:"]["compliant"] is False
    assert volumes["D:"]["kind"] == "data" and volumes["D:"]["compliant"] is False
    assert "E:" not in volumes  # removable
    assert facts["noncompliant"] == ["C:", "D:"]


def test_bitlocker_protected_and_locked_volumes_are_compliant() -> None:
    facts = parse_bitlocker(json.loads(fixture("windows-bitlocker-compliant.json")))
    volumes = by_mount(facts)
    assert volumes["C:"]["compliant"] is True and volumes["D:"]["status"] == "locked"
    assert volumes["D:"]["compliant"] is True


@pytest.mark.parametrize(
    ("name", "status", "compliant", "percent"),
    [
        ("macos-fdesetup-on.txt", "encrypted", True, None),
        ("macos-fdesetup-off.txt", "not_encrypted", False, None),
        ("macos-fdesetup-encrypting.txt", "encrypting", False, 42.5),
        ("macos-fdesetup-pending.txt", "encrypting", False, None),
        ("macos-fdesetup-deferred.txt", "not_encrypted", False, None),
        ("macos-fdesetup-decrypting.txt", "decrypting", False, 73.0),
    ],
)
def test_filevault_states(name: str, status: str, compliant: bool, percent: float | None) -> None:
    (volume,) = parse_fdesetup_status(fixture(name))["volumes"]
    assert (volume["status"], volume["compliant"], volume["percent"]) == (status, compliant, percent)


def test_filevault_unrecognised_output_is_an_error() -> None:
    with pytest.raises(ProbeError, match="unrecognised fdesetup output"):
        parse_fdesetup_status("fdesetup: command requires root\n")


def test_macos_recording_exit_status_2_while_encrypting() -> None:
    facts = collect_disk_encryption_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert facts["volumes"][0]["status"] == "encrypting"


def test_lsblk_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"platform": "linux"}))
    with pytest.raises(ProbeError, match="command not found: lsblk"):
        collect_disk_encryption_linux(ReplayHost(tmp_path), {})


@pytest.mark.skipif(shutil.which("lsblk") is None, reason="no lsblk here")
def test_live_facts_match_what_the_machine_shows() -> None:
    facts = collect_disk_encryption_linux(LocalHost(), {})
    root = os.stat("/")
    majmin = f"{os.major(root.st_dev)}:{os.minor(root.st_dev)}"
    system = [v for v in facts["volumes"] if v["kind"] == "system"]
    kname = Path(f"/sys/dev/block/{majmin}").resolve().name if Path(f"/sys/dev/block/{majmin}").exists() else None
    if kname is None:
        assert system == []
        return
    assert system[0]["device"] == kname

    # Independently: walk /sys/block/*/slaves down from the root device looking for a dm-crypt mapping.
    def crypt_below(name: str) -> bool:
        uuid = Path(f"/sys/class/block/{name}/dm/uuid")
        if uuid.exists() and uuid.read_text().startswith("CRYPT-"):
            return True
        slaves = Path(f"/sys/class/block/{name}/slaves")
        children = list(slaves.iterdir()) if slaves.exists() else []
        return bool(children) and all(crypt_below(child.name) for child in children)

    assert system[0]["encrypted"] is crypt_below(kname)
    swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    persistent = [line for line in swaps if not line.split()[0].startswith("/dev/zram")]
    assert len([v for v in facts["volumes"] if v["kind"] == "swap"]) == len(persistent)
    if shutil.which("dmsetup"):
        listing = subprocess.run(["dmsetup", "ls", "--target", "crypt"], capture_output=True, text=True)
        if "No devices found" in listing.stdout:
            assert all(v["encrypted"] is False for v in facts["volumes"])
