"""The spool survives SIGKILL: real processes killed in the middle of writing and acknowledging.

What a writer reported as committed must be there afterwards (or acknowledged and gone), a batch is all
there or not at all, counters agree with the rows, and SQLite's integrity check passes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.spool import Spool
from tests.agent.helpers import ROOT, clean_env


def _kill_writer_midway(path: Path, batch_size: int, mode: str, rng: random.Random) -> list[list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.agent.spool_crash_writer", str(path), str(batch_size), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=clean_env(),
    )
    # Into the write loop however long start-up takes on this machine: the first committed batch is announced.
    assert proc.stdout is not None
    first = proc.stdout.readline()
    time.sleep(rng.uniform(0, 0.4))
    proc.send_signal(signal.SIGKILL)
    rest, stderr = proc.communicate(timeout=30)
    stdout = first + rest
    assert first.endswith("\n") and proc.returncode == -signal.SIGKILL, stderr
    # a line cut off by the kill may be incomplete: only whole lines are promises
    return [line.split() for line in stdout.splitlines() if stdout.endswith("\n") or line != stdout.splitlines()[-1]]


def test_batches_are_all_or_nothing_after_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    rng = random.Random(5)
    promised: set[str] = set()
    for _ in range(6):
        for line in _kill_writer_midway(path, 20, "add", rng):
            promised.update(line[2:])
        with Spool(path, 1 << 40) as spool:
            assert spool.integrity() == "ok"
            rows = spool.pending(1_000_000)
            ids = {r.report_id for r in rows}
            assert promised <= ids  # everything promised is there
            # no torn batch: every batch present has all its 20 reports
            by_batch: dict[str, int] = {}
            for r in rows:
                batch = r.body.split('"check_id":"b', 1)[1].split("-", 1)[0]
                by_batch[batch] = by_batch.get(batch, 0) + 1
            assert set(by_batch.values()) == {20}
            assert spool.stats().collected_results == 3 * len(rows)
    assert len(promised) >= 20  # the writer did get to write


def test_acknowledged_reports_stay_gone_and_counters_agree_after_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    rng = random.Random(11)
    added: set[str] = set()
    acked: set[str] = set()
    for kills in range(1, 7):
        for line in _kill_writer_midway(path, 3, "ack", rng):
            if line[0] == "added":
                added.update(line[2:])
            else:
                acked.add(line[1])
        with Spool(path, 1 << 40) as spool:
            assert spool.integrity() == "ok"
            ids = {r.report_id for r in spool.pending(1_000_000)}
            assert not (ids & acked)  # an acknowledged report never comes back to be sent again
            # only a batch whose line the kill cut (at most one per kill) is there without a promise
            assert len(ids - added) <= 3 * kills
            stats = spool.stats()
            # A report missing without an "acked" line was acknowledged by a commit whose line the kill cut:
            # the counters show it; nothing committed and unacknowledged is lost.
            missing = added - acked - ids
            assert stats.delivered_reports == len(acked) + len(missing)
            assert stats.collected_results == stats.results + stats.delivered_results
    assert acked
