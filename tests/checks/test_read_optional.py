"""The one `read_optional` the probes share (checks/probes/common.py): absent is None, unreadable raises
unless the caller says an unreadable file counts as absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.probes.common import read_optional
from checks.probes.host import AccessDenied
from checks.probes.replay import ReplayHost


@pytest.fixture
def host(tmp_path: Path) -> ReplayHost:
    files = {
        "/etc/present": {"content": " text \n"},
        "/etc/denied": {"content": "secret", "denied": True},
        "/etc/unlookable": {"stat_denied": True},
    }
    (tmp_path / "host.json").write_text(json.dumps({"platform": "linux", "files": files}))
    return ReplayHost(tmp_path)


def test_a_present_file_is_its_text_as_read_and_an_absent_one_none(host: ReplayHost) -> None:
    assert read_optional(host, "/etc/present") == " text \n"
    assert read_optional(host, "/etc/absent") is None
    assert read_optional(host, "/etc/absent", unreadable="missing") is None


@pytest.mark.parametrize("path", ["/etc/denied", "/etc/unlookable"])
def test_an_unreadable_file_raises_unless_it_counts_as_missing(host: ReplayHost, path: str) -> None:
    with pytest.raises(AccessDenied, match=path):
        read_optional(host, path)
    assert read_optional(host, path, unreadable="missing") is None
