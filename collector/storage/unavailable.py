"""Telling "the database cannot be reached now" from every other database error.

A PostgreSQL restart, failover or network cut ends connections (admin or crash shutdown) and refuses new
ones until the server is back ("the database system is starting up", or no answer at all). None of that
says anything about the request: the API answers 503 with Retry-After and the caller comes back, as an
agent does with a report (nothing is lost: it stays in its spool). Any other error remains a 500.
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

# admin shutdown, crash shutdown, cannot connect now; class 08 (connection exception) is matched by prefix
LOST_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03"})


class DatabaseUnavailable(Exception):
    """The database could not be reached, after the retries the caller makes itself."""


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` (psycopg's, or SQLAlchemy's around psycopg's) means the connection was lost or refused."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:  # SQLAlchemy saw a disconnect
            return True
        return exc.orig is not None and is_connection_failure(exc.orig)
    if isinstance(exc, psycopg.OperationalError):
        # No SQLSTATE: psycopg could not connect, or the server went away mid-call ("server closed the
        # connection unexpectedly"); an error the server itself raised always carries one.
        state = exc.sqlstate
        return state is None or state in LOST_CONNECTION_STATES or state.startswith("08")
    return False
