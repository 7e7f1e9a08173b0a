"""The distribution: `python -m build` makes an sdist and a wheel, and the wheel installs and runs the agent
without the collector's dependencies."""

from __future__ import annotations

import subprocess
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from checks import __version__
from tests.conftest import DATA

# The collector's server stack (pyproject.toml, extra `collector`): an endpoint must get none of it.
SERVER_ONLY = ("fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "msal", "jinja2", "msgspec")


@pytest.mark.slow
def test_build_makes_an_sdist_and_a_wheel_with_the_shipped_data(built_distributions: Path) -> None:
    wheel = built_distributions / f"rampart-{__version__}-py3-none-any.whl"
    sdist = built_distributions / f"rampart-{__version__}.tar.gz"
    assert wheel.is_file() and sdist.is_file()
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "policies/baseline.yaml",
        "checks/probes/os_support/eol.json",
        "checks/py.typed",
        "agent/deploy/rampart-agent.timer",
    }
    assert shipped <= names
    assert {"agent/deploy/rampart-agent.service", "agent/deploy/rampart-agent-once.service"} <= names
    assert not any(name.startswith(("tests/", "packaging/", "bench/")) for name in names)
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "policies/baseline.yaml", "agent/deploy/rampart-agent.service"} <= members


@pytest.mark.slow
def test_the_wheel_alone_installs_and_runs_the_agent(built_distributions: Path, tmp_path: Path) -> None:
    (wheel,) = built_distributions.glob("rampart-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # The wheel and its dependencies from the index: not this tree, not editable, no extras.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    for server_only in SERVER_ONLY:
        assert f"{server_only}==" not in installed, f"the agent install pulled in {server_only}"
    assert f"rampart=={__version__}" in installed

    agent = str(env_dir / "bin" / "rampart-agent")
    version = subprocess.run([agent, "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"rampart-agent {__version__}"
    where = subprocess.run(
        [str(python), "-c", "import agent; print(agent.__file__)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert where.stdout.startswith(str(env_dir))  # the installed copy, not this tree
    replay = subprocess.run(
        [agent, "check", "--replay", str(DATA / "hosts" / "debian12-laptop-lvm-luks"), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert replay.returncode == 0, replay.stderr
    assert '"name": "jane-laptop"' in replay.stdout and '"status": "fail"' in replay.stdout
    here = subprocess.run(
        [agent, "check", "--format", "json"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert here.returncode == 0, here.stderr
    assert '"policy"' in here.stdout
