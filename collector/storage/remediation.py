"""How to fix a check: its `remediation:` text, from the policy the result was judged against.

`check_catalog` holds what a check is (title, severity) but not its texts; the texts are in the stored
policy documents. A result names the version it was judged by (its hash): that version's text, or the
newest stored version's when that one is not stored here, or the shipped policy's of that id (the cloud
policies the collector runs are written to the catalog without a stored document).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from collector.storage.policy_texts import check_texts

_SHIPPED: dict[str, dict[str, str]] | None = None


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
    stored: dict[str, Any] = check_texts.get(connection, policy_id, policy_hash)
    if not stored:
        return _shipped(policy_id)
    return {check_id: texts.get("remediation", "") for check_id, texts in stored.items()}


def remediation_of(connection: Connection, policy_id: str, policy_hash: str | None, check_id: str) -> str | None:
    """One check's remediation text, or None when no policy known here says it."""
    return remediations(connection, policy_id, policy_hash).get(check_id) or None
