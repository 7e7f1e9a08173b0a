"""The sshd probe on recorded `sshd -T` output (tests/data/probes/sshd/) and on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.probes.host import AccessDenied
from checks.probes.local import LocalHost
from checks.probes.replay import ReplayHost
from checks.probes.sshd.collect import collect_sshd
from checks.probes.sshd.parse import parse_sshd_t
from tests.conftest import DATA

PROBES = DATA / "probes"


def fixture(family: str, name: str) -> str:
    return (PROBES / family / name).read_text(encoding="utf-8")


def test_sshd_t_recorded_on_debian() -> None:
    facts = parse_sshd_t(fixture("sshd", "debian12-sshd-T.txt"))
    assert facts["permit_root_login"] == "without-password"
    assert facts["password_authentication"] is True and facts["permit_empty_passwords"] is False
    assert facts["x11_forwarding"] is True and facts["max_auth_tries"] == 6
    assert facts["weak_algorithms"] == []
    weak = parse_sshd_t(
        "ciphers aes256-ctr,aes128-cbc\nmacs hmac-sha2-256,hmac-md5\nkexalgorithms diffie-hellman-group1-sha1\n"
    )
    assert weak["weak_algorithms"] == ["aes128-cbc", "diffie-hellman-group1-sha1", "hmac-md5"]


def test_sshd_needs_root(tmp_path: Path) -> None:
    stderr = str(PROBES / "sshd" / "debian12-sshd-T-unprivileged.stderr")
    spec = {
        "platform": "linux",
        "which": {"sshd": "/usr/sbin/sshd"},
        "commands": [{"argv": ["/usr/sbin/sshd", "-T"], "returncode": 1, "stderr_file": stderr}],
    }
    (tmp_path / "host.json").write_text(json.dumps(spec))
    with pytest.raises(AccessDenied, match="needs root"):
        collect_sshd(ReplayHost(tmp_path), {})


def test_live_sshd_matches_what_is_installed() -> None:
    host = LocalHost()
    try:
        facts = collect_sshd(host, {})
    except AccessDenied:
        assert host.which("sshd") is not None
        return
    assert facts["installed"] is (host.which("sshd") is not None)


def test_a_unicode_digit_in_max_auth_tries_is_unknown_not_a_crash() -> None:
    assert parse_sshd_t("maxauthtries ²\npermitrootlogin no\n")["max_auth_tries"] is None
