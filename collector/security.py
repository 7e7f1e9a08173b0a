"""Secrets the collector hands out (enrolment and API tokens) and the roles API tokens carry.

Tokens are 256 random bits, shown once, stored only as their SHA-256: a database leak does not give them
away, and because they are random (not passwords) a fast hash is enough.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

ENROLLMENT_PREFIX = "rpe_"
API_PREFIX = "rpa_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything
    ANALYST = "analyst"  # read, waivers
    AUDITOR = "auditor"  # read, export, audit log


class Permission(enum.StrEnum):
    READ = "read"
    WAIVE = "waive"
    EXPORT = "export"
    AUDIT = "audit"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset({Permission.READ, Permission.WAIVE}),
    Role.AUDITOR: frozenset({Permission.READ, Permission.EXPORT, Permission.AUDIT}),
}


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
