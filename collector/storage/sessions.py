"""The dashboard's people: local passwords (argon2id), Entra ID accounts, sessions and sign-in throttling.

A session is a row keyed by the SHA-256 of a random secret that only the browser's cookie holds. Every
request reads it joined to its user, so signing out, expiry and disabling the user end it at once, on
every collector replica. Each session has its own CSRF token (synchronizer pattern): every form carries it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection

from collector.security import Role, token_hash
from collector.storage import audit
from collector.storage.models import dashboard_sessions, sign_in_failures, users
from collector.storage.users import UserError, add_user

# argon2-cffi's defaults follow RFC 9106's second recommendation (argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()
# Verified against when the user does not exist or has no password, so that both take as long as a
# wrong password and the answer does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class SessionUser:
    """Who a dashboard request comes from."""

    session_id: str
    user: str
    role: str
    csrf_token: str
    method: str
    expires_at: dt.datetime

    @property
    def actor(self) -> str:
        return f"user:{self.user}"


# --- passwords -----------------------------------------------------------------------------------------


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("weak_password", f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError("bad_password", f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def set_password(connection: Connection, name: str, password: str, *, by: str, now: dt.datetime) -> None:
    """Give a user a password for the dashboard's local sign-in; ends their sessions (audited)."""
    check_password_rules(password)
    changed = connection.execute(
        users.update().where(users.c.name == name).values(password_hash=_hasher.hash(password))
    ).rowcount
    if not changed:
        raise UserError("not_found", f"no user {name!r}")
    end_user_sessions(connection, name, now)
    audit.record(connection, by, "user.set_password", name, at=now)


def verify_password(connection: Connection, name: str, password: str) -> bool:
    """True when `name` is an enabled user whose password this is (as long either way)."""
    row = connection.execute(
        sa.select(users.c.password_hash).where(users.c.name == name, users.c.disabled_at.is_(None))
    ).first()
    stored = row.password_hash if row is not None and row.password_hash else None
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD_LENGTH]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(connection: Connection, name: str, password: str) -> None:
    """Store the hash again with today's parameters when they changed since it was made."""
    stored = connection.execute(sa.select(users.c.password_hash).where(users.c.name == name)).scalar()
    if stored and _hasher.check_needs_rehash(stored):
        connection.execute(users.update().where(users.c.name == name).values(password_hash=_hasher.hash(password)))


# --- throttling ----------------------------------------------------------------------------------------


def record_failure(connection: Connection, user_name: str, address: str, now: dt.datetime) -> None:
    connection.execute(sign_in_failures.insert().values(at=now, user_name=user_name[:100], address=address[:64]))


def recent_failures(connection: Connection, user_name: str, address: str, since: dt.datetime) -> tuple[int, int]:
    """(failures for this user name, failures from this address) since `since`."""
    by_user = connection.execute(
        sa.select(sa.func.count())
        .select_from(sign_in_failures)
        .where(sign_in_failures.c.user_name == user_name[:100], sign_in_failures.c.at >= since)
    ).scalar_one()
    by_address = connection.execute(
        sa.select(sa.func.count())
        .select_from(sign_in_failures)
        .where(sign_in_failures.c.address == address[:64], sign_in_failures.c.at >= since)
    ).scalar_one()
    return int(by_user), int(by_address)


def forget_failures(connection: Connection, user_name: str) -> None:
    connection.execute(sign_in_failures.delete().where(sign_in_failures.c.user_name == user_name[:100]))


def prune_failures(connection: Connection, before: dt.datetime) -> int:
    return int(connection.execute(sign_in_failures.delete().where(sign_in_failures.c.at < before)).rowcount)


# --- sessions ------------------------------------------------------------------------------------------


def start_session(
    connection: Connection,
    name: str,
    *,
    method: str,
    address: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> str:
    """A new session for an enabled user; returns the secret for the cookie (audited as a sign-in)."""
    row = connection.execute(sa.select(users.c.id).where(users.c.name == name, users.c.disabled_at.is_(None))).first()
    if row is None:
        raise UserError("not_found", f"no enabled user {name!r}")
    secret = secrets.token_urlsafe(32)
    connection.execute(
        dashboard_sessions.insert().values(
            id=token_hash(secret),
            user_id=row.id,
            csrf_token=secrets.token_urlsafe(32),
            method=method,
            address=address[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    audit.record(connection, f"user:{name}", "session.sign_in", name, {"method": method, "address": address}, now)
    return secret


def session_for(
    connection: Connection, secret: str, now: dt.datetime, idle_timeout: dt.timedelta
) -> SessionUser | None:
    """The live session whose cookie holds `secret`: not ended, not expired, not idle too long, and its
    user still enabled. None otherwise."""
    row = connection.execute(
        sa.select(
            dashboard_sessions.c.id,
            dashboard_sessions.c.csrf_token,
            dashboard_sessions.c.method,
            dashboard_sessions.c.expires_at,
            dashboard_sessions.c.last_seen_at,
            users.c.name,
            users.c.role,
        )
        .join(users, users.c.id == dashboard_sessions.c.user_id)
        .where(
            dashboard_sessions.c.id == token_hash(secret),
            dashboard_sessions.c.ended_at.is_(None),
            dashboard_sessions.c.expires_at > now,
            dashboard_sessions.c.last_seen_at > now - idle_timeout,
            users.c.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return SessionUser(row.id, row.name, row.role, row.csrf_token, row.method, row.expires_at)


def touch(connection: Connection, session_id: str, now: dt.datetime) -> None:
    connection.execute(
        dashboard_sessions.update().where(dashboard_sessions.c.id == session_id).values(last_seen_at=now)
    )


def last_seen(connection: Connection, session_id: str) -> dt.datetime | None:
    value = connection.execute(
        sa.select(dashboard_sessions.c.last_seen_at).where(dashboard_sessions.c.id == session_id)
    ).scalar()
    return value if isinstance(value, dt.datetime) else None


def end_session(connection: Connection, session: SessionUser, now: dt.datetime) -> None:
    connection.execute(
        dashboard_sessions.update()
        .where(dashboard_sessions.c.id == session.session_id, dashboard_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    audit.record(connection, session.actor, "session.sign_out", session.user, at=now)


def end_user_sessions(connection: Connection, name: str, now: dt.datetime) -> int:
    """End every session of a user (password changed, user disabled); returns how many were live."""
    user_id = sa.select(users.c.id).where(users.c.name == name).scalar_subquery()
    return int(
        connection.execute(
            dashboard_sessions.update()
            .where(dashboard_sessions.c.user_id == user_id, dashboard_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        ).rowcount
    )


def prune_sessions(connection: Connection, before: dt.datetime) -> int:
    """Delete sessions that ended or expired before `before` (the retention job's work)."""
    return int(
        connection.execute(
            dashboard_sessions.delete().where(
                sa.or_(dashboard_sessions.c.expires_at < before, dashboard_sessions.c.ended_at < before)
            )
        ).rowcount
    )


# --- Entra ID accounts ---------------------------------------------------------------------------------


def entra_user(
    connection: Connection,
    *,
    external_id: str,
    name: str,
    role: Role,
    now: dt.datetime,
) -> str:
    """The user for an Entra ID account, created on first sign-in; its role follows the directory's.

    Returns the user's name. Refuses an account whose user was disabled here (the directory cannot undo
    that), and a name that a local user (not this account) already has.
    """
    actor = f"entra:{external_id.split(':', 1)[-1]}"
    row = connection.execute(sa.select(users).where(users.c.external_id == external_id)).first()
    if row is None:
        if connection.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
            raise UserError(
                "name_taken",
                f"a user named {name!r} exists here without this Entra ID account: an admin must disable or "
                "rename it first",
            )
        add_user(connection, name, role.value, by=actor, now=now)
        connection.execute(users.update().where(users.c.name == name).values(external_id=external_id))
        return name
    if row.disabled_at is not None:
        raise UserError("user_disabled", f"user {row.name!r} is disabled here")
    if row.role != role.value:
        connection.execute(users.update().where(users.c.id == row.id).values(role=role.value))
        audit.record(connection, actor, "user.role", row.name, {"from": row.role, "to": role.value}, now)
    return str(row.name)
