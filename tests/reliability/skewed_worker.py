"""`python -m tests.reliability.skewed_worker OFFSET_S TASK ...`: the agent's worker on a machine whose clock
is OFFSET_S seconds off (negative: behind).

There is no fake clock for a process on this machine (no libfaketime), and changing the system clock would
change it for every test. So the wall clock the agent reads, `time.time`, is shifted before any agent
module is imported (their defaults, such as Transport.time_fn, capture it when they are defined): signing
times, backoff deadlines and the spool's timestamps all come from the skewed clock, as on such a machine.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    offset = float(sys.argv[1])
    real = time.time

    def skewed() -> float:
        return real() + offset

    time.time = skewed
    from agent.worker import main as worker_main

    return worker_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
