"""What a result says, in 8 bytes: compared with the latest row's to tell whether it changed.

The digest covers what the collector keeps from the agent for a (subject, policy, check) beyond its
status: the observed facts, the expectation, the reason and the policy version's hash (which fixes the
check's title, severity and version, collector/storage/assignments.py). The status, the waiver and the
evaluation time are compared as columns, not hashed.

The facts are hashed as the JSON text they are stored as: the bytes the agent sent (the typed decoder
keeps them, collector/storage/report_codec.py) or `json.dumps` of a parsed value (what SQLAlchemy stores).
Two texts of the same value (other spacing, other key order) give two digests: that costs one rewrite of
the row, never a change missed.

Migration 0009 holds a copy of this function (a migration stays as it was written);
tests/collector/test_store_changes.py checks that they agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec

_SEPARATOR = b"\x1f"  # never in JSON text unescaped; the free text (reason) comes last


_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes


def json_text(value: Any) -> bytes:
    """The JSON text a value is stored as."""
    if type(value) is msgspec.Raw:
        return bytes(value)
    return json.dumps(value).encode()


def result_digest(policy_hash: str, observed: Any, expectation: Any, reason: str) -> int:
    """A signed 64-bit digest (it fits a BIGINT on both databases). Runs for every result of every
    report: one hashing call, the typed decoder's JSON texts joined as they are (no copy)."""
    data = _SEPARATOR.join(
        (
            policy_hash.encode(),
            observed if type(observed) is msgspec.Raw else json_text(observed),
            expectation if type(expectation) is msgspec.Raw else json_text(expectation),
            reason.encode(),
        )
    )
    return _from_bytes(_blake2b(data, digest_size=8).digest(), "big", signed=True)
