"""The signed wire format between agents and the collector (see docs/protocol.md).

Agents sign every request with their Ed25519 key; the collector signs the policy bundles it serves.
Signatures cover a canonical byte string, so that what is verified is exactly what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from checks.policy.model import canonical_json

PROTOCOL = "rampart-v1"
MAX_CLOCK_SKEW_S = 300

HEADER_AGENT = "X-Rampart-Agent"
HEADER_TIMESTAMP = "X-Rampart-Timestamp"
HEADER_CONTENT_SHA256 = "X-Rampart-Content-SHA256"
HEADER_SIGNATURE = "X-Rampart-Signature"
SIGNED_HEADERS = (HEADER_AGENT, HEADER_TIMESTAMP, HEADER_CONTENT_SHA256, HEADER_SIGNATURE)


class WireError(Exception):
    """A request or bundle that must be refused; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str, *, clock_skew_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.clock_skew_s = clock_skew_s


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise WireError("bad_encoding", "not valid base64url") from exc


# --- keys ----------------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The raw 32-byte public key, base64url: the form that travels in JSON."""
    return b64url(public_key_bytes(key))


def load_public_key(text: str) -> Ed25519PublicKey:
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise WireError("bad_public_key", "an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise WireError("bad_private_key", "not an Ed25519 private key")
    return key


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """A short, stable name for a public key: the first 16 bytes of its SHA-256, hex."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:32]


def agent_id_for(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """An agent's id is derived from its public key: a cloned machine that re-enrols gets a new one."""
    return "ag-" + key_id(key)


# --- signed requests (agent -> collector) ---------------------------------------------------------------


def request_signing_string(method: str, path: str, timestamp: int, agent_id: str, content_sha256: str) -> bytes:
    return "\n".join((PROTOCOL, method.upper(), path, str(timestamp), agent_id, content_sha256)).encode()


def sign_request(
    key: Ed25519PrivateKey, agent_id: str, method: str, path: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that authenticate one request. `path` is the URL path without scheme, host or query."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hashlib.sha256(body).hexdigest()
    signature = key.sign(request_signing_string(method, path, timestamp, agent_id, digest))
    return {
        HEADER_AGENT: agent_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_CONTENT_SHA256: digest,
        HEADER_SIGNATURE: b64url(signature),
    }


@dataclass(frozen=True)
class SignedHeaders:
    agent_id: str
    timestamp: int
    content_sha256: str
    signature: bytes


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def parse_signed_headers(headers: Any) -> SignedHeaders:
    """Read the signature headers (from any case-insensitive mapping) without touching the body."""
    missing = [name for name in SIGNED_HEADERS if not headers.get(name)]
    if missing:
        raise WireError("unsigned", f"missing header {missing[0]}")
    try:
        timestamp = int(headers[HEADER_TIMESTAMP])
    except ValueError as exc:
        raise WireError("bad_timestamp", f"{HEADER_TIMESTAMP} is not a whole number of seconds") from exc
    digest = str(headers[HEADER_CONTENT_SHA256]).lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise WireError("bad_digest", f"{HEADER_CONTENT_SHA256} is not a SHA-256 in hex")
    return SignedHeaders(str(headers[HEADER_AGENT]), timestamp, digest, b64url_decode(str(headers[HEADER_SIGNATURE])))


def check_timestamp(signed: SignedHeaders, now: float | None = None, max_skew_s: int = MAX_CLOCK_SKEW_S) -> None:
    now = time.time() if now is None else now
    skew = int(round(now - signed.timestamp))
    if abs(skew) > max_skew_s:
        raise WireError(
            "stale_timestamp",
            f"request timestamp is {abs(skew)}s {'behind' if skew > 0 else 'ahead of'} the collector's clock "
            f"(allowed: {max_skew_s}s)",
            clock_skew_s=skew,
        )


def verify_request(public_key: Ed25519PublicKey, signed: SignedHeaders, method: str, path: str, body: bytes) -> None:
    if hashlib.sha256(body).hexdigest() != signed.content_sha256:
        raise WireError("bad_digest", "the body does not match its SHA-256 header")
    message = request_signing_string(method, path, signed.timestamp, signed.agent_id, signed.content_sha256)
    try:
        public_key.verify(signed.signature, message)
    except InvalidSignature as exc:
        raise WireError("bad_signature", "the signature does not verify with this agent's key") from exc


# --- reports -------------------------------------------------------------------------------------------


def new_report_id() -> str:
    return str(uuid.uuid4())


def make_report(
    *,
    agent_id: str,
    results: list[dict[str, Any]],
    report_id: str | None = None,
    created_at: str | None = None,
    dropped: int = 0,
    host: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of POST /api/v1/reports: one agent run (or part of one), idempotent by report_id."""
    return {
        "protocol": PROTOCOL,
        "report_id": report_id or new_report_id(),
        "agent_id": agent_id,
        "created_at": created_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dropped": dropped,
        "host": host or {},
        "results": results,
    }


# --- signed documents (collector -> agent: policy bundles) --------------------------------------------


def sign_document(key: Ed25519PrivateKey, payload: dict[str, Any]) -> dict[str, Any]:
    """A payload with a detached signature over its canonical JSON."""
    return {
        "payload": payload,
        "signature": {"alg": "Ed25519", "key_id": key_id(key), "value": b64url(key.sign(canonical_json(payload)))},
    }


def verify_document(public_key: Ed25519PublicKey, document: Any) -> dict[str, Any]:
    """The payload of a signed document, or WireError when it was altered or signed by another key."""
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise WireError("bad_document", "a signed document has a payload and a signature")
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519" or "value" not in signature:
        raise WireError("bad_document", "the document's signature is missing or not Ed25519")
    if signature.get("key_id") != key_id(public_key):
        raise WireError("wrong_key", "the document was signed by another key than the one pinned")
    try:
        signed = canonical_json(document["payload"])
    except ValueError as exc:  # NaN or infinity: read by Python's json, never signed by a collector
        raise WireError("bad_document", f"the document's payload has no canonical form: {exc}") from exc
    try:
        public_key.verify(b64url_decode(str(signature["value"])), signed)
    except InvalidSignature as exc:
        raise WireError("bad_signature", "the document's signature does not verify: it was altered") from exc
    return dict(document["payload"])
