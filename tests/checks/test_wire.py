"""The signed wire format: requests and documents verify only as sent, by the right key, in time."""

from __future__ import annotations

import pytest

from checks import wire


def test_request_signature_round_trip() -> None:
    key = wire.generate_key()
    agent = wire.agent_id_for(key)
    body = b'{"report_id": "r1"}'
    headers = wire.sign_request(key, agent, "POST", "/api/v1/reports", body, timestamp=1_000)
    signed = wire.parse_signed_headers(headers)
    wire.check_timestamp(signed, now=1_100)
    wire.verify_request(key.public_key(), signed, "POST", "/api/v1/reports", body)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"body": b'{"report_id": "r2"}'}, "bad_digest"),
        ({"path": "/api/v1/other"}, "bad_signature"),
        ({"method": "PUT"}, "bad_signature"),
        ({"key": "other"}, "bad_signature"),
    ],
)
def test_tampered_requests_are_refused(change: dict[str, object], code: str) -> None:
    key = wire.generate_key()
    agent = wire.agent_id_for(key)
    body = b'{"report_id": "r1"}'
    headers = wire.sign_request(key, agent, "POST", "/api/v1/reports", body, timestamp=1_000)
    signed = wire.parse_signed_headers(headers)
    verifier = wire.generate_key().public_key() if change.get("key") else key.public_key()
    with pytest.raises(wire.WireError) as caught:
        wire.verify_request(
            verifier,
            signed,
            str(change.get("method", "POST")),
            str(change.get("path", "/api/v1/reports")),
            change.get("body", body),  # type: ignore[arg-type]
        )
    assert caught.value.code == code


def test_stale_timestamp_carries_the_skew() -> None:
    key = wire.generate_key()
    headers = wire.sign_request(key, wire.agent_id_for(key), "POST", "/x", b"", timestamp=1_000)
    with pytest.raises(wire.WireError) as caught:
        wire.check_timestamp(wire.parse_signed_headers(headers), now=1_000 + 3_600)
    assert caught.value.code == "stale_timestamp" and caught.value.clock_skew_s == 3_600
    assert "3600s behind" in caught.value.message


def test_missing_and_malformed_headers() -> None:
    with pytest.raises(wire.WireError, match="missing header X-Rampart-Agent"):
        wire.parse_signed_headers({})
    key = wire.generate_key()
    headers = wire.sign_request(key, wire.agent_id_for(key), "POST", "/x", b"")
    with pytest.raises(wire.WireError, match="not a whole number"):
        wire.parse_signed_headers({**headers, wire.HEADER_TIMESTAMP: "soon"})


def test_agent_id_is_derived_from_the_key() -> None:
    key = wire.generate_key()
    assert wire.agent_id_for(key) == wire.agent_id_for(wire.load_public_key(wire.public_key_text(key)))
    assert wire.agent_id_for(key) != wire.agent_id_for(wire.generate_key())
    assert wire.load_private_key_pem(wire.private_key_pem(key)).public_key() is not None


def test_signed_documents() -> None:
    key = wire.generate_key()
    document = wire.sign_document(key, {"policies": [{"id": "baseline"}], "issued_at": "2026-11-26T00:00:00Z"})
    assert wire.verify_document(key.public_key(), document)["policies"] == [{"id": "baseline"}]
    document["payload"]["policies"][0]["id"] = "evil"
    with pytest.raises(wire.WireError) as caught:
        wire.verify_document(key.public_key(), document)
    assert caught.value.code == "bad_signature"
    with pytest.raises(wire.WireError) as caught:
        wire.verify_document(wire.generate_key().public_key(), document)
    assert caught.value.code == "wrong_key"
