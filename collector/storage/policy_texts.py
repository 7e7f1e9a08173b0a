"""What a check says about itself (title, description, rationale, remediation), from the stored policy
documents, kept per process: `check_catalog` holds what a check is (title, severity) but not its texts.

A result names the version it was judged by (its hash): that version's texts, or the newest stored
version's when that one is not stored here. Shared by the dashboard, the CLI and the API
(collector/storage/remediation.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import policies


class PolicyTexts:
    """Title, description, rationale and remediation of each check, from the stored policy documents, per
    process: by policy hash for ever (a version's text never changes), the newest version of a policy
    for a minute (a new one may be stored)."""

    NEWEST_TTL_S = 60.0

    def __init__(self) -> None:
        # (policy, hash or "") -> (when read, for ever?, texts)
        self._by_key: dict[tuple[str, str], tuple[float, bool, dict[str, dict[str, str]]]] = {}
        self._lock = threading.Lock()

    def get(self, connection: Connection, policy_id: str, policy_hash: str | None) -> dict[str, dict[str, str]]:
        key = (policy_id, policy_hash or "")
        entry = self._by_key.get(key)
        if entry is not None and (entry[1] or time.monotonic() - entry[0] < self.NEWEST_TTL_S):
            return entry[2]
        query = sa.select(policies.c.document).where(policies.c.policy_id == policy_id)
        query = (
            query.where(policies.c.sha256 == policy_hash)
            if policy_hash
            else query.order_by(policies.c.added_at.desc(), policies.c.id.desc()).limit(1)
        )
        document = connection.execute(query).scalar()
        if document is None and policy_hash:  # judged by a version not stored here: the newest stored
            texts = self.get(connection, policy_id, None)
        else:
            texts = _texts_of(document)
        with self._lock:
            if len(self._by_key) > 1000:
                self._by_key.clear()
            # A version found is for ever; the newest, or a version not (yet) stored, for a minute.
            self._by_key[key] = (time.monotonic(), document is not None and bool(policy_hash), texts)
        return texts


def _texts_of(document: Any) -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for check in (document or {}).get("checks", []):
        if isinstance(check, dict) and "id" in check:
            entry = {key: str(check.get(key) or "") for key in ("description", "rationale", "remediation")}
            # The collector is the authority on what a check is: its stored policy's title wins over the
            # one an agent reported.
            if check.get("title"):
                entry["title"] = str(check["title"])
            texts[str(check["id"])] = entry
    return texts


check_texts = PolicyTexts()
