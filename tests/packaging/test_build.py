"""packaging/build_deb.py and the files it packs, without building (tests/packaging/test_deb.py builds)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from agent.config import load_agent_config

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "build_deb.py"
DEBIAN = ROOT / "packaging" / "debian"
UNIT = ROOT / "agent" / "deploy" / "rampart-agent.service"


def build_deb_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_deb", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BUILD), *args], capture_output=True, text=True, timeout=60)


def test_the_conffile_is_the_agent_section_with_every_default_commented_out(tmp_path: Path) -> None:
    result = run_build("conffile")
    assert result.returncode == 0, result.stderr
    shipped = tmp_path / "config.yaml"
    shipped.write_text(result.stdout)
    assert yaml.safe_load(result.stdout) == {"agent": None}  # as installed, every setting is its default
    assert "collector:" not in result.stdout and "cloud:" not in result.stdout

    # Uncommented, each line is the setting at its default: the file tells the truth about them.
    settings = re.findall(r"^  #(\w+):", result.stdout, re.M)
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())["agent"]
    assert settings == list(example)
    uncommented = tmp_path / "uncommented.yaml"
    uncommented.write_text(re.sub(r"^(\s+)#(?! )", r"\1", result.stdout, flags=re.M))
    assert yaml.safe_load(uncommented.read_text())["agent"] == example
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    defaults = load_agent_config(str(empty), environ={})
    assert load_agent_config(str(shipped), environ={}) == defaults
    assert load_agent_config(str(uncommented), environ={}) == defaults


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_python_versions_become_debian_versions_that_sort_the_same() -> None:
    debian_version = build_deb_module().debian_version
    assert debian_version("0.1.0") == "0.1.0-1"
    # In PEP 440's order.
    ordered = ["0.9", "1.0.0.dev3", "1.0.0a1", "1.0.0b2.dev1", "1.0.0b2", "1.0.0rc1", "1.0.0", "1.0.0.post1.dev1",
               "1.0.0.post1", "1.0.1", "1.10"]  # fmt: skip
    versions = [debian_version(v) for v in ordered]
    for older, newer in zip(versions, versions[1:], strict=False):
        assert subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], timeout=30).returncode == 0, (
            older,
            newer,
        )
    with pytest.raises(Exception, match="not a release"):
        debian_version("1.0-beta")


def test_a_missing_or_foreign_wheel_is_refused_with_the_reason(tmp_path: Path) -> None:
    missing = run_build("deb", str(tmp_path / "rampart-0.1.0-py3-none-any.whl"), "--out", str(tmp_path))
    assert missing.returncode == 1 and "no such wheel" in missing.stderr and "make package" in missing.stderr
    foreign = tmp_path / "requests-2.0-py3-none-any.whl"
    foreign.write_bytes(b"")
    refused = run_build("deb", str(foreign), "--out", str(tmp_path), "--python", sys.executable)
    assert refused.returncode == 1 and "not a rampart wheel" in refused.stderr
    rampart = tmp_path / "rampart-0.1.0-py3-none-any.whl"
    rampart.write_bytes(b"")
    no_python = run_build("deb", str(rampart), "--out", str(tmp_path), "--python", str(tmp_path / "python3.11"))
    assert no_python.returncode == 1 and "does not exist" in no_python.stderr
    assert list(tmp_path.glob("*.deb")) == []


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")
@pytest.mark.parametrize("script", ["postinst", "prerm", "postrm", "rampart-agent"])
def test_maintainer_scripts_and_the_wrapper_are_posix_shell(script: str) -> None:
    path = DEBIAN / script
    assert path.read_text().startswith("#!/bin/sh\n") and path.stat().st_mode & 0o111
    assert subprocess.run(["dash", "-n", str(path)], capture_output=True, timeout=30).returncode == 0
    if script != "rampart-agent":
        assert "set -e" in path.read_text() and path.read_text().rstrip().endswith("exit 0")


def test_the_wrapper_gives_root_runs_exactly_the_services_capabilities() -> None:
    wrapper = (DEBIAN / "rampart-agent").read_text()
    (caps,) = re.findall(r"^caps=-all,(\S+)$", wrapper, re.M)
    granted = {f"CAP_{c.lstrip('+').upper()}" for c in caps.split(",")}
    (ambient,) = re.findall(r"^AmbientCapabilities=(.*)$", UNIT.read_text(), re.M)
    assert granted == set(ambient.split()) == {"CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"}
    assert "--reuid=rampart --regid=rampart" in wrapper and '--ambient-caps="$caps" --bounding-set="$caps"' in wrapper


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_package_builds_the_distributions_then_the_deb_and_make_clean_removes_them(tmp_path: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "package", f"DIST={tmp_path}/out"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    lines = [line for line in dry.stdout.splitlines() if "python" in line or line.startswith("rm ")]
    assert lines[-3:] == [
        f"rm -rf {tmp_path}/out",
        f".venv/bin/python -m build --outdir {tmp_path}/out .",
        f".venv/bin/python packaging/build_deb.py deb {tmp_path}/out/rampart-*.whl --out {tmp_path}/out",
    ]
    clean = subprocess.run(["make", "-n", "clean"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert " dist " in clean.stdout
