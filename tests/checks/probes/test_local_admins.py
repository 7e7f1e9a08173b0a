"""local_admins: Linux groups and UID 0, Windows Administrators by SID, macOS admin group; live here."""

from __future__ import annotations

import grp
import json
import pwd

from checks.probes.local import LocalHost
from checks.probes.local_admins.darwin import collect_local_admins_darwin
from checks.probes.local_admins.linux import collect_local_admins_linux
from checks.probes.local_admins.parse import parse_linux_admins, parse_windows_admins
from checks.probes.replay import ReplayHost
from tests.conftest import DATA

FIXTURES = DATA / "probes" / "local_admins"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_linux_admins_from_groups_primary_groups_and_uid0() -> None:
    passwd = (
        "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n"
        "ann:x:1000:1000::/h:/bin/sh\nbob:x:1001:10::/h:/bin/sh\n"
    )
    group = "root:x:0:\nwheel:x:10:ann\nsudo:x:27:\n"
    facts = parse_linux_admins(passwd, group)
    assert [(a["name"], a["via"]) for a in facts["admins"]] == [
        ("root", "uid0"),
        ("toor", "uid0"),
        ("ann", "wheel"),
        ("bob", "wheel"),  # primary group wheel
    ]
    assert facts["uid0_accounts"] == ["toor"]
    # A Unicode digit (which int() refuses) is not a uid: the line is skipped.
    assert parse_linux_admins("odd:x:²:0::/h:/bin/sh\n", "")["admins"] == []


def test_live_admins_match_getent() -> None:
    facts = collect_local_admins_linux(LocalHost(), {})
    expected = {u.pw_name for u in pwd.getpwall() if u.pw_uid == 0}
    for name in ("sudo", "wheel", "admin"):
        try:
            group = grp.getgrnam(name)
        except KeyError:
            continue
        expected |= set(group.gr_mem) | {u.pw_name for u in pwd.getpwall() if u.pw_gid == group.gr_gid}
    assert {a["name"] for a in facts["admins"]} == expected
    assert facts["count"] == len(expected)


def test_windows_admins_by_sid_in_any_language() -> None:
    english = parse_windows_admins(json.loads(fixture("windows-admins.json")))
    assert [a["kind"] for a in english["admins"]] == ["user", "group", "user"]
    assert english["builtin_admin_enabled"] is False
    german = parse_windows_admins(json.loads(fixture("windows-admins-german.json")))
    assert german["count"] == 2 and {a["kind"] for a in german["admins"]} == {"user"}
    assert german["builtin_admin_enabled"] is True


def test_macos_admins() -> None:
    facts = collect_local_admins_darwin(ReplayHost(DATA / "hosts" / "macos-laptop"), {})
    assert [a["name"] for a in facts["admins"]] == ["root", "jappleseed"]
