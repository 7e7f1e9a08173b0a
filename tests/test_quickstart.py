"""docs/quickstart.md is true: its `sh` blocks, run in order in an empty directory, all succeed.

The page declares its substitutions in an HTML comment (`<!-- quickstart-test: substitute 8443 with a free
port -->`), so a reader sees the real default and the test does not collide with anything listening.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.support.collector import free_port

QUICKSTART = Path(__file__).parents[1] / "docs" / "quickstart.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)
FREE_PORT = re.compile(r"<!-- quickstart-test: substitute (\S+) with a free port -->")


def script_of(text: str, port: int) -> str:
    blocks = BLOCK.findall(text)
    assert blocks, "docs/quickstart.md has no ```sh block"
    body = "\n".join(blocks)
    for placeholder in FREE_PORT.findall(text):
        body = body.replace(placeholder, str(port))
    # -e: the first command that fails fails the walk-through; -x: the log says which one it was.
    return "set -euxo pipefail\n" + body


def test_blocks_and_substitutions_are_found() -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    script = script_of(text, 65000)
    assert FREE_PORT.search(text) and "8443" not in script and "65000" in script
    for command in (
        "rampart-collector init",
        "enroll-token create",
        "rampart-agent enroll",
        "run --once",
        "rampart-collector summary",
        "rampart-collector host ",
        "briefing --out",
    ):
        assert command in script, command
    assert "pip install" not in script  # installing is shown, not run


@pytest.mark.slow
def test_quickstart_commands_run_in_order(tmp_path: Path) -> None:
    script = script_of(QUICKSTART.read_text(encoding="utf-8"), free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=90)
    finally:
        # The collector the page starts in the background is in the script's process group: whatever
        # happened, it goes with it (the page's own last step stops it when all went well).
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if process.poll() is None:
            process.kill()
            process.wait()
    log = tmp_path / "collector.log"
    detail = output[-6000:] + ("\n--- collector.log ---\n" + log.read_text()[-3000:] if log.exists() else "")
    assert process.returncode == 0, detail
    assert (tmp_path / "briefing.html").stat().st_size > 0
    assert "Compliance:" in output and "remediation:" in output
