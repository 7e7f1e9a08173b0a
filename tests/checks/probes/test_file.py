"""The file probe on this machine, checked against what the machine shows independently."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from tests.checks.probes.live import probe


def test_file_probe_matches_stat(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("hello")
    target.chmod(0o604)
    facts = probe("file", path=str(target), hash=True)
    assert facts["exists"] and not facts["is_dir"]
    assert facts["mode"] == "0604" and facts["world_readable"] and not facts["world_writable"]
    assert facts["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert facts["size"] == 5
    assert facts["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert probe("file", path=str(tmp_path / "nope"))["exists"] is False
