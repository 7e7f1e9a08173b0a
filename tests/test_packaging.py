"""The distribution: the agent installs and runs without the collector's dependencies."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_agent_only_install_runs_the_baseline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("rampart-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"policies/baseline.yaml", "checks/probes/data/eol.json", "checks/py.typed"} <= names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=600, capture_output=True
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    for server_only in ("fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "msal", "jinja2"):
        assert f"{server_only}==" not in installed, f"the agent install pulled in {server_only}"
    result = subprocess.run(
        [str(env_dir / "bin" / "rampart-agent"), "check", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert '"policy"' in result.stdout
