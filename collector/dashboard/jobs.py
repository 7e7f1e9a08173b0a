"""Forgetting sessions and sign-in failures no longer needed; run by the retention job (collector/jobs.py),
once across replicas. Sessions go a day after they ended or expired (the audit log keeps the sign-ins and
sign-outs), failures once they are older than the throttling window."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from collector.config import CollectorConfig
from collector.storage import sessions
from collector.storage.engine import write_tx


def prune(engine: Engine, config: CollectorConfig, now: dt.datetime) -> dict[str, Any]:
    with write_tx(engine) as connection:
        ended = sessions.prune_sessions(connection, now - dt.timedelta(days=1))
        failures = sessions.prune_failures(connection, now - config.dashboard.duration("sign_in_window"))
    return {"deleted_sessions": ended, "deleted_sign_in_failures": failures}
