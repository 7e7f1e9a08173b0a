"""`rampart-agent check` keeps apt's cache between runs, as the daemon's worker does, only in a directory
that nobody else can change (agent/check_cache.py); run as processes, on this machine's apt."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

needs_apt = pytest.mark.skipif(
    shutil.which("apt-cache") is None or not Path("/var/lib/dpkg/status").exists(), reason="needs apt and dpkg"
)
needs_root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root (chown, state dir)")
NOBODY = 65534
# The checks that read apt (patch_level), and one that does not: enough to see the cache used, and cheap.
APT_CHECKS = ("no-pending-security-updates", "package-index-fresh", "security-updates-within-14-days")
PKGCACHE = "apt-pkgcache.bin"


def _config(tmp_path: Path, state_dir: Path) -> Path:
    config = tmp_path / "agent.yaml"
    config.write_text(f"agent:\n  state_dir: {state_dir}\n", encoding="utf-8")
    return config


def _check(config: Path, xdg: Path | str, *extra: str) -> dict[str, Any]:
    """One `check` of the apt checks, with the given config and XDG_CACHE_HOME; it must not complain."""
    only = [arg for check in APT_CHECKS for arg in ("--only", check)]
    done = run_cli(
        "rampart-agent",
        "check",
        *only,
        "--format",
        "json",
        "--config",
        str(config),
        *extra,
        env={"XDG_CACHE_HOME": str(xdg), "HOME": str(config.parent / "home")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # a cache that cannot be kept is no error, nor a warning
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["check_id"]: r["status"] for r in report["results"]}


def _facts(report: dict[str, Any]) -> dict[str, Any]:
    """Observed facts but the probe's words on what its record bounds (they name the cache's path)."""
    return {
        r["check_id"]: {k: v for k, v in r["observed"].items() if k not in ("notes", "unknown_because")}
        for r in report["results"]
    }


@needs_apt
def test_a_second_check_reuses_the_per_user_cache_and_judges_the_same(tmp_path: Path) -> None:
    config = _config(tmp_path, tmp_path / "no-agent-here")  # no agent state directory: the per-user cache
    xdg = tmp_path / "xdg"
    plain = _check(config, xdg, "--no-cache")
    assert not xdg.exists()  # --no-cache keeps nothing anywhere
    first = _check(config, xdg)
    cache_dir = xdg / "rampart"
    cache = cache_dir / PKGCACHE
    assert cache.stat().st_size > 0 and cache_dir.stat().st_mode & 0o777 == 0o700
    assert cache_dir.stat().st_uid == os.geteuid()
    built = cache.stat()
    second = _check(config, xdg)
    # Reused, not rebuilt: apt validates it against the lists and dpkg's status, which did not change.
    assert (cache.stat().st_ino, cache.stat().st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    assert _statuses(plain) == _statuses(first) == _statuses(second)
    assert _facts(first) == _facts(second) and _facts(plain) == _facts(first)
    assert not (tmp_path / "no-agent-here").exists()  # `check` never creates the agent's state directory


@needs_apt
def test_without_xdg_cache_home_the_cache_is_under_home(tmp_path: Path) -> None:
    config = _config(tmp_path, tmp_path / "no-agent-here")
    (tmp_path / "home").mkdir(mode=0o700)
    _check(config, "relative/is/ignored")  # a relative XDG_CACHE_HOME is ignored, as the XDG spec says
    assert (tmp_path / "home" / ".cache" / "rampart" / PKGCACHE).is_file()
    assert not Path("relative").exists()


@needs_apt
def test_check_shares_the_agents_probe_cache_when_the_state_directory_is_this_users(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    xdg = tmp_path / "xdg"
    _check(_config(tmp_path, state), xdg)
    assert (state / "cache" / PKGCACHE).is_file() and (state / "cache").stat().st_mode & 0o777 == 0o700
    assert not xdg.exists()


@needs_apt
@needs_root
def test_as_root_another_users_state_directory_is_not_used(tmp_path: Path) -> None:
    """The Debian package's daemon runs as `rampart`: root does not read a cache that user could write."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    xdg = tmp_path / "xdg"
    _check(_config(tmp_path, state), xdg)
    assert not (state / "cache").exists()
    assert (xdg / "rampart" / PKGCACHE).is_file()  # root's own cache instead


def _world_writable_base(tmp_path: Path) -> Path:
    base = tmp_path / "open"
    base.mkdir()
    base.chmod(0o777)  # not sticky: anyone could swap what is in it
    return base


def _others_cache(tmp_path: Path) -> Path:
    base = tmp_path / "others"
    (base / "rampart").mkdir(parents=True, mode=0o700)
    os.chown(base / "rampart", NOBODY, NOBODY)
    return base


def _loose_cache(tmp_path: Path) -> Path:
    base = tmp_path / "loose"
    (base / "rampart").mkdir(parents=True)
    (base / "rampart").chmod(0o777)
    return base


def _link_to_world_writable(tmp_path: Path) -> Path:
    base = tmp_path / "linked"
    base.mkdir()
    (base / "rampart").symlink_to(_world_writable_base(tmp_path))
    return base


def _a_file(tmp_path: Path) -> Path:
    base = tmp_path / "a-file"
    base.write_text("not a directory", encoding="utf-8")
    return base


@needs_apt
@pytest.mark.parametrize(
    "make_base",
    [
        pytest.param(_world_writable_base, id="world-writable-parent"),
        pytest.param(_others_cache, id="another-users-directory", marks=needs_root),
        pytest.param(_loose_cache, id="group-and-world-writable-directory"),
        pytest.param(_link_to_world_writable, id="symlink-to-world-writable"),
        pytest.param(_a_file, id="cannot-be-created"),
    ],
)
def test_an_unsafe_or_unwritable_cache_directory_is_not_used_and_is_no_error(tmp_path: Path, make_base: Any) -> None:
    base: Path = make_base(tmp_path)
    config = _config(tmp_path, tmp_path / "no-agent-here")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    report = _check(config, base)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert not list(tmp_path.rglob(PKGCACHE))
    assert set(_statuses(report)) == set(APT_CHECKS)


def test_an_invalid_config_named_on_the_command_line_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent:\n  spool_max_mb: lots\n", encoding="utf-8")
    refused = run_cli("rampart-agent", "check", "--only", "os-64-bit", "--config", str(bad))
    assert refused.returncode == 2 and str(bad) in refused.stderr
    missing = run_cli("rampart-agent", "check", "--only", "os-64-bit", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    helped = run_cli("rampart-agent", "check", "--help")
    assert "--no-cache" in helped.stdout
