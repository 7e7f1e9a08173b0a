"""People and their API tokens. A token carries its user's role; tokens are stored as SHA-256 only."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.security import API_PREFIX, Role, new_id, new_secret, token_hash
from collector.storage import audit
from collector.storage.models import api_tokens, iso, users

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


class UserError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who is making an API request."""

    user: str
    role: str
    token_id: str


def add_user(connection: Connection, name: str, role: str, *, by: str, now: dt.datetime) -> dict[str, Any]:
    if not _NAME.match(name):
        raise UserError(
            "bad_user", "a user name is letters, digits and ._@+- (up to 100), starting with a letter or digit"
        )
    try:
        Role(role)
    except ValueError:
        raise UserError("bad_role", f"role must be one of {', '.join(r.value for r in Role)}") from None
    if connection.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
        raise UserError("duplicate_user", f"user {name!r} exists")
    connection.execute(users.insert().values(name=name, role=role, created_at=now))
    audit.record(connection, by, "user.add", name, {"role": role}, now)
    return get_user(connection, name)


def get_user(connection: Connection, name: str) -> dict[str, Any]:
    row = connection.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise UserError("not_found", f"no user {name!r}")
    return {"name": row.name, "role": row.role, "created_at": iso(row.created_at), "disabled_at": iso(row.disabled_at)}


def list_users(connection: Connection) -> list[dict[str, Any]]:
    return [
        {"name": row.name, "role": row.role, "created_at": iso(row.created_at), "disabled_at": iso(row.disabled_at)}
        for row in connection.execute(sa.select(users).order_by(users.c.name))
    ]


def disable_user(connection: Connection, name: str, *, by: str, now: dt.datetime) -> bool:
    """Disable a user (their API tokens stop working); False when they already were.

    Refused for the caller themself (`by` is `user:<name>`: nobody locks themself out by mistake) and
    for the last enabled admin (someone must be left to manage the collector over the API).
    """
    # The enabled admins, locked: two admins disabling each other at once cannot leave none.
    admins = connection.execute(
        sa.select(users.c.name)
        .where(users.c.role == Role.ADMIN.value, users.c.disabled_at.is_(None))
        .order_by(users.c.id)
        .with_for_update()
    ).scalars()
    enabled_admins = list(admins)
    target = get_user(connection, name)  # not_found when there is no such user
    if target["disabled_at"] is not None:
        return False
    if by == f"user:{name}":
        raise UserError("cannot_disable_self", "you cannot disable yourself: ask another admin")
    if name in enabled_admins and len(enabled_admins) <= 1:
        raise UserError("last_admin", f"{name} is the last enabled admin: enable or add another admin first")
    connection.execute(users.update().where(users.c.name == name).values(disabled_at=now))
    audit.record(connection, by, "user.disable", name, at=now)
    return True


def enable_user(connection: Connection, name: str, *, by: str, now: dt.datetime) -> bool:
    """Enable a disabled user again (their tokens that are neither revoked nor expired work again); False
    when they were enabled."""
    get_user(connection, name)
    changed = connection.execute(
        users.update().where(users.c.name == name, users.c.disabled_at.is_not(None)).values(disabled_at=None)
    ).rowcount
    if changed:
        audit.record(connection, by, "user.enable", name, at=now)
    return bool(changed)


def create_token(
    connection: Connection,
    user: str,
    *,
    by: str,
    now: dt.datetime,
    label: str = "",
    valid_for: dt.timedelta | None = None,
) -> tuple[str, dict[str, Any]]:
    """A new API token for `user`: (the secret, shown once; its listing)."""
    row = connection.execute(sa.select(users).where(users.c.name == user)).first()
    if row is None:
        raise UserError("not_found", f"no user {user!r}")
    if row.disabled_at is not None:
        raise UserError("user_disabled", f"user {user!r} is disabled")
    secret = new_secret(API_PREFIX)
    token_id = new_id("tk-")
    expires_at = now + valid_for if valid_for else None
    connection.execute(
        api_tokens.insert().values(
            id=token_id,
            user_id=row.id,
            token_hash=token_hash(secret),
            label=label[:255],
            created_at=now,
            expires_at=expires_at,
        )
    )
    audit.record(connection, by, "api_token.create", token_id, {"user": user, "label": label}, now)
    return secret, {
        "id": token_id,
        "user": user,
        "role": row.role,
        "label": label,
        "created_at": iso(now),
        "expires_at": iso(expires_at),
    }


def list_tokens(connection: Connection, user: str | None = None) -> list[dict[str, Any]]:
    query = (
        sa.select(api_tokens, users.c.name, users.c.role)
        .join(users, users.c.id == api_tokens.c.user_id)
        .order_by(api_tokens.c.created_at.desc())
    )
    if user:
        query = query.where(users.c.name == user)
    return [
        {
            "id": row.id,
            "user": row.name,
            "role": row.role,
            "label": row.label,
            "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at),
            "revoked_at": iso(row.revoked_at),
        }
        for row in connection.execute(query)
    ]


def revoke_token(connection: Connection, token_id: str, *, by: str, now: dt.datetime) -> bool:
    changed = connection.execute(
        api_tokens.update().where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount
    if changed:
        audit.record(connection, by, "api_token.revoke", token_id, at=now)
    return bool(changed)


def authenticate(connection: Connection, secret: str, now: dt.datetime) -> Caller | None:
    row = connection.execute(
        sa.select(api_tokens.c.id, api_tokens.c.expires_at, api_tokens.c.revoked_at, users.c.name, users.c.role)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == token_hash(secret), users.c.disabled_at.is_(None))
    ).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return Caller(user=row.name, role=row.role, token_id=row.id)
