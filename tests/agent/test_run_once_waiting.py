"""`rampart-agent run --once` against a collector that is down (a closed loopback port) says on standard
error what it waits for, as it waits: the URL it checks in with, and each failed attempt with its number,
the number allowed and when the next one is. The test waits for the line, not for a time."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

from tests.agent.helpers import clean_env, make_state, small_policy, write_config
from tests.conftest import BIN


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_once_says_what_it_waits_for(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    make_state(tmp_path / "state", collector_url=url, policies=[small_policy()])
    # The shipped retry settings (4 attempts, 2 s doubling): silent, they made about 20 s without a word.
    config = write_config(tmp_path / "agent.yaml", state_dir=str(tmp_path / "state"))
    agent = subprocess.Popen(
        [str(BIN / "rampart-agent"), "--config", str(config), "run", "--once"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert agent.stderr is not None
        for line in agent.stderr:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=60)  # a bound for a broken agent; the line comes in well under a second
            assert line is not None, "ended without saying what it waited for:\n" + "".join(seen)
            seen.append(line)
            if "attempt 1 of 4 failed" in line:
                break
    finally:
        agent.send_signal(signal.SIGTERM)  # forwarded to the worker, which stops cleanly
        agent.wait(timeout=60)
        reader.join(timeout=60)
        assert agent.stderr is not None
        agent.stderr.close()
    said = "".join(seen)
    assert f"checking in with {url} (up to 4 attempts)" in said
    assert re.search(
        rf"waiting for the collector \(POST {re.escape(url)}/api/v1/checkin\): cannot reach {re.escape(url)}: "
        r"Connection refused; attempt 1 of 4 failed, next try in \d+\.\ds",
        said,
    ), said
