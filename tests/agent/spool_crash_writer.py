"""A process that writes to the spool as fast as it can until it is killed (tests/agent/test_spool_crash.py).

It prints a line only after the transaction it describes has committed, so every line printed is a promise
the spool must keep after SIGKILL: `added BATCH ID...` and `acked ID`.
"""

from __future__ import annotations

import os
import sys

from agent.spool import Spool
from checks import wire


def main() -> None:
    path, batch_size, acking = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "ack"
    spool = Spool(path, 1 << 40)
    batch = 0
    tag = os.getpid()
    while True:
        batch += 1
        reports = [
            wire.make_report(
                agent_id="ag-crash",
                results=[{"check_id": f"b{tag}.{batch}-{i}", "status": "pass", "observed": {"pad": "y" * 300}}] * 3,
            )
            for i in range(batch_size)
        ]
        spool.add(reports)
        print("added", batch, *(r["report_id"] for r in reports), flush=True)
        if acking and batch % 2 == 0:
            head = spool.oldest()
            if head is not None and spool.prepare_send(head.seq) is not None:
                spool.acknowledge(head.seq)
                print("acked", head.report_id, flush=True)


if __name__ == "__main__":
    main()
