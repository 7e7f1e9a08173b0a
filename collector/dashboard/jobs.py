"""The dashboard's scheduled job: forget sessions and sign-in failures no longer needed (hourly, once
across replicas). Sessions are kept a day past their end (for the audit trail the sign-in entries already
give, that is enough), failures once they are older than the throttling window."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from collector.config import CollectorConfig
from collector.jobs import Job, register
from collector.storage import sessions
from collector.storage.engine import write_tx


def prune(engine: Engine, config: CollectorConfig, now: dt.datetime) -> dict[str, Any]:
    with write_tx(engine) as connection:
        ended = sessions.prune_sessions(connection, now - dt.timedelta(days=1))
        failures = sessions.prune_failures(connection, now - config.dashboard.duration("sign_in_window"))
    return {"deleted_sessions": ended, "deleted_sign_in_failures": failures}


register(Job("dashboard-sessions", lambda _config: 3600, prune))
