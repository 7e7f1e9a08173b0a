"""Shared test helpers: run our commands as real processes, write files to a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DATA = Path(__file__).parent / "data"


def run_cli(
    program: str,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `rampart-agent` or `rampart-collector` from this virtual environment as a process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / program), *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd
    )


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented text to a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def built_distributions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository built as `make package` builds it (`python -m build`): a directory with the sdist and
    the wheel made from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    root = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say so when the shared PostgreSQL server was found away during the run (tests/support/shared_server.py)."""
    from tests.support.shared_server import FOUND_DOWN

    if FOUND_DOWN:
        terminalreporter.section("the shared PostgreSQL server was found away", sep="!")
        for found in FOUND_DOWN:
            terminalreporter.write_line(found)
