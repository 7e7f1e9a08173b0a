"""`init` sets owner-only modes itself: whatever the umask, and on a data directory left open by hand."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.collector import BIN, clean_env

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

PRIVATE = ("signing-key.pem", "tls/ca-key.pem", "tls/server-key.pem", "collector.db")
PUBLIC = ("tls/ca.pem", "tls/server.pem")


def init(config: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "rampart-collector"), "--config", str(config), "init", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        umask=umask,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_owner_only(data: Path) -> None:
    assert mode(data) == 0o700 and mode(data / "tls") == 0o700
    for name in PRIVATE:
        assert mode(data / name) == 0o600, name
    for name in PUBLIC:
        assert mode(data / name) == 0o644, name
    for companion in data.glob("collector.db-*"):
        assert mode(companion) == 0o600, companion.name


def test_init_under_umask_000_leaves_nothing_open(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = init(config, umask=0)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == []
    assert_owner_only(tmp_path / "data")


def test_init_closes_an_existing_data_directory_left_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {data}\n", encoding="utf-8")
    assert init(config).returncode == 0
    for path in [data, *data.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # as a careless copy or a restore might leave them
    again = init(config)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["created"] == []  # nothing replaced, only closed
    assert_owner_only(data)


def test_a_private_key_named_outside_the_data_directory_is_warned_about(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "signing-key.pem"
    config = tmp_path / "c.yaml"
    config.write_text(f"collector:\n  data_dir: {tmp_path / 'data'}\n  signing_key_file: {key}\n", encoding="utf-8")
    assert init(config).returncode == 0
    key.chmod(0o644)
    again = init(config)
    assert again.returncode == 0
    assert json.loads(again.stdout)["warnings"] == [f"{key} can be read by others than its owner: chmod 600 it"]
    assert mode(key) == 0o644  # the admin's file: told, not changed
