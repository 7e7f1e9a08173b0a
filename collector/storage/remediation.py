"""How to fix a check: its `remediation:` text, from the policy the result was judged against.

`check_catalog` holds what a check is (title, severity) but not its texts; the texts are in the stored
policy documents. A result names the version it was judged by (its hash): that version's text, or the
newest stored version's when that one is not stored here, or the shipped policy's of that id (the cloud
policies the collector runs are written to the catalog without a stored document).
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import policies

# A version's text never changes: kept per process by hash (bounded, cleared when full).
_BY_HASH: dict[str, dict[str, str]] = {}
_SHIPPED: dict[str, dict[str, str]] | None = None
_LOCK = threading.Lock()


def _texts(document: Any) -> dict[str, str]:
    return {
        str(check["id"]): str(check.get("remediation") or "")
        for check in (document or {}).get("checks", [])
        if isinstance(check, dict) and "id" in check
    }


def _shipped(policy_id: str) -> dict[str, str]:
    global _SHIPPED
    if _SHIPPED is None:
        from checks.policy.loader import PolicyError, load_policy_file
        from policies import shipped_policies

        found: dict[str, dict[str, str]] = {}
        for path in shipped_policies():
            try:
                policy = load_policy_file(path)
            except PolicyError:
                continue
            found[policy.id] = {check.id: check.remediation for check in policy.checks}
        _SHIPPED = found
    return _SHIPPED.get(policy_id, {})


def remediations(connection: Connection, policy_id: str, policy_hash: str | None) -> dict[str, str]:
    """check id -> remediation text of `policy_id` as the version `policy_hash` says (see the module)."""
    if policy_hash and policy_hash in _BY_HASH:
        return _BY_HASH[policy_hash]
    if policy_hash:
        document = connection.execute(sa.select(policies.c.document).where(policies.c.sha256 == policy_hash)).scalar()
        if document is not None:
            texts = _texts(document)
            with _LOCK:
                if len(_BY_HASH) > 1000:
                    _BY_HASH.clear()
                _BY_HASH[policy_hash] = texts
            return texts
    newest = connection.execute(
        sa.select(policies.c.document)
        .where(policies.c.policy_id == policy_id)
        .order_by(policies.c.added_at.desc(), policies.c.id.desc())
        .limit(1)
    ).scalar()
    return _texts(newest) if newest is not None else _shipped(policy_id)


def remediation_of(connection: Connection, policy_id: str, policy_hash: str | None, check_id: str) -> str | None:
    """One check's remediation text, or None when no policy known here says it."""
    return remediations(connection, policy_id, policy_hash).get(check_id) or None
