"""The wire format under hostile input: signed requests and documents, report bodies.

- A signed request verifies exactly when nothing was changed: any change of method, path, timestamp,
  body or signature is refused with a WireError, never accepted and never another exception.
- Signature headers of any shape are read or refused with a WireError (the collector answers 400/401).
- A signed document (a policy bundle) verifies only as signed, with the pinned key.
- Report bodies: parse_report accepts or refuses with a ReportError naming the field; the fast decoder
  (msgspec) accepts only what parse_report accepts, and reads it the same (a differential test).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from checks import wire
from collector.storage.ingest import ReportError, parse_report
from collector.storage.report_codec import decode_report
from tests.fuzz.test_parsers import json_values
from tests.reliability.figures import Figures
from tests.support.agents import make_result

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

KEY = wire.generate_key()
OTHER = wire.generate_key()
AGENT = wire.agent_id_for(KEY)
NOW = 1_790_000_000


@given(
    body=st.binary(max_size=300),
    change=st.sampled_from(["method", "path", "timestamp", "body", "signature", "agent", "digest"]),
    data=st.data(),
)
def test_a_signed_request_verifies_only_unchanged(
    body: bytes, change: str, data: st.DataObject, figures: Figures
) -> None:
    """A signed request verifies unchanged, and any change of it is refused with a WireError."""
    figures.add("examples")
    headers = wire.sign_request(KEY, AGENT, "POST", "/api/v1/reports", body, NOW)
    signed = wire.parse_signed_headers(headers)
    wire.verify_request(KEY.public_key(), signed, "POST", "/api/v1/reports", body)
    method, path, sent = "POST", "/api/v1/reports", body
    if change == "method":
        method = data.draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH"]))
    elif change == "path":
        path = data.draw(st.text(min_size=1, max_size=40).filter(lambda p: p != "/api/v1/reports"))
    elif change == "timestamp":
        signed = wire.SignedHeaders(
            signed.agent_id,
            signed.timestamp + data.draw(st.integers(1, 10**6)),
            signed.content_sha256,
            signed.signature,
        )
    elif change == "body":
        sent = data.draw(st.binary(max_size=300).filter(lambda b: b != body))
    elif change == "signature":
        flip = data.draw(st.integers(0, len(signed.signature) * 8 - 1))
        raw = bytearray(signed.signature)
        raw[flip // 8] ^= 1 << (flip % 8)
        signed = wire.SignedHeaders(signed.agent_id, signed.timestamp, signed.content_sha256, bytes(raw))
    elif change == "agent":
        signed = wire.SignedHeaders(wire.agent_id_for(OTHER), signed.timestamp, signed.content_sha256, signed.signature)
    else:
        digest = data.draw(
            st.text("0123456789abcdef", min_size=64, max_size=64).filter(lambda d: d != signed.content_sha256)
        )
        signed = wire.SignedHeaders(signed.agent_id, signed.timestamp, digest, signed.signature)
    with pytest.raises(wire.WireError):
        wire.verify_request(KEY.public_key(), signed, method, path, sent)
    figures.add("tampered_refused")


header_names = st.sampled_from(list(wire.SIGNED_HEADERS))
# what a collector could sign (its JSON has no NaN or infinity); a document received may have anything
finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@given(headers=st.dictionaries(header_names, st.text(max_size=100), max_size=len(wire.SIGNED_HEADERS)))
def test_signature_headers_of_any_shape_are_read_or_refused(headers: dict[str, str], figures: Figures) -> None:
    """Signature headers of any shape are read or refused with a WireError, never another exception."""
    figures.add("examples")
    try:
        wire.parse_signed_headers(headers)
    except wire.WireError:
        figures.add("refused")


@given(payload=st.dictionaries(st.text(max_size=10), finite_json, max_size=6), data=st.data())
def test_a_signed_document_verifies_only_as_signed(
    payload: dict[str, Any], data: st.DataObject, figures: Figures
) -> None:
    """A policy bundle verifies as signed with the pinned key; altered, re-keyed or mangled it is refused."""
    figures.add("examples")
    document = wire.sign_document(KEY, payload)
    assert wire.verify_document(KEY.public_key(), json.loads(json.dumps(document))) == payload
    with pytest.raises(wire.WireError):
        wire.verify_document(OTHER.public_key(), document)
    altered = json.loads(json.dumps(document))
    key = data.draw(st.text(max_size=10))
    value = data.draw(finite_json)
    if altered["payload"].get(key, object()) != value:
        altered["payload"][key] = value
        with pytest.raises(wire.WireError):
            wire.verify_document(KEY.public_key(), altered)
    mangled = data.draw(json_values)
    try:
        wire.verify_document(KEY.public_key(), mangled)
    except wire.WireError:
        figures.add("refused")


def valid_report(results: list[dict[str, Any]]) -> dict[str, Any]:
    return wire.make_report(
        agent_id=AGENT, results=results, report_id=str(uuid.uuid4()), created_at="2026-11-30T10:00:00Z"
    )


@st.composite
def damaged_reports(draw: st.DrawFn) -> Any:
    """A valid report with some fields replaced by values of any type (or removed), at any depth."""
    report = valid_report(
        [make_result(f"c{i}", draw(st.sampled_from(["pass", "fail", "error"]))) for i in range(draw(st.integers(0, 3)))]
    )

    def walk(node: Any, depth: int) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                roll = draw(st.integers(0, 9))
                if roll == 0:
                    continue  # removed
                out[k] = draw(json_values) if roll == 1 else walk(v, depth + 1)
            return out
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        return node

    return walk(report, 0)


@given(data=st.one_of(damaged_reports(), json_values))
def test_report_bodies_are_parsed_or_refused_naming_the_field(data: Any, figures: Figures) -> None:
    """A report body of any shape is parsed, or refused with a ReportError with a code and a message."""
    figures.add("examples")
    try:
        parse_report(data, AGENT)
    except ReportError as exc:
        assert exc.code and exc.message
        figures.add("refused")


# undamaged reports too: the fuzzer seldom leaves one whole, and only then are both decoders' readings compared
@example(data=valid_report([make_result("c0", "pass"), make_result("c1", "fail")]), compact=False)
@example(data=valid_report([make_result("c0", "error")]), compact=True)
@given(data=st.one_of(damaged_reports(), json_values), compact=st.booleans())
def test_the_fast_decoder_accepts_only_what_parse_report_accepts(data: Any, compact: bool, figures: Figures) -> None:
    """Differential: decode_report (msgspec) never accepts what parse_report refuses, and reads it the same."""
    figures.add("examples")
    body = json.dumps(data, separators=(",", ":") if compact else (", ", ": ")).encode()
    fast = decode_report(body, AGENT)
    try:
        slow = parse_report(data, AGENT)
    except ReportError:
        assert fast is None, f"the fast decoder accepted what parse_report refuses: {body[:300]!r}"
        return
    if fast is not None:
        figures.add("both_accepted")
        assert as_values(fast) == as_values(slow)


def as_values(report: Any) -> Any:
    """A parsed report with the fast decoder's raw JSON (observed, expectation: stored as received) decoded,
    so that the two decoders are compared on what the JSON says, not on its spacing."""
    results = [
        dataclasses.replace(
            r,
            observed=json.loads(bytes(r.observed)) if isinstance(r.observed, msgspec.Raw) else r.observed,
            expectation=json.loads(bytes(r.expectation)) if isinstance(r.expectation, msgspec.Raw) else r.expectation,
        )
        for r in report.results
    ]
    return dataclasses.replace(report, results=results)


@given(body=st.binary(max_size=400))
def test_the_fast_decoder_takes_any_bytes(body: bytes, figures: Figures) -> None:
    """decode_report returns a report or None for any bytes at all (the collector then asks parse_report)."""
    figures.add("examples")
    decode_report(body, AGENT)


def test_a_document_with_a_number_json_cannot_sign_is_refused_not_crashed() -> None:
    """Python's json reads Infinity and NaN: a received bundle holding one is refused with a WireError (it
    raised ValueError from the canonical form, and the agent's worker ended with an internal error)."""
    document = wire.sign_document(KEY, {"etag": "x"})
    received = json.loads(json.dumps(document).replace('"x"', "Infinity"))
    with pytest.raises(wire.WireError):
        wire.verify_document(KEY.public_key(), received)
