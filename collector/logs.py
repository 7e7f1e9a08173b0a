"""Logs as JSON lines (or text: `log_format`) on standard error, for a log system to parse.

Nothing secret is logged: request logs carry the method, route, status, duration and who (agent id or
user name), never headers, tokens, signatures or bodies.
"""

from __future__ import annotations

import logging

from checks.logformat import JsonFormatter as JsonFormatter  # the one format, shared with the agent
from checks.logformat import log_to_stderr


def setup_logging(level: str = "info", log_format: str = "json") -> None:
    log_to_stderr(level, log_format)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Requests are logged by our own middleware, without query strings or headers.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
