"""Policy bundles: only what the pinned collector key signed, for this agent, valid and not older, is used."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent.policy_cache import PolicyCache, PolicyRefused, verify_bundle
from agent.state import StatePaths
from checks import wire
from tests.agent.helpers import make_state, sign_bundle, small_policy

WAIVER = {
    "id": "w-1",
    "check": "no-such-file",
    "scope": {"groups": ["servers"]},
    "justification": "Test file is absent by design.",
    "requested_by": "alice",
    "approved_by": "bob",
    "expires": "2099-12-31",
    "policy": None,
    "ticket": "",
}


def test_a_good_bundle_is_verified_stored_and_reloaded(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state")
    cache = PolicyCache(StatePaths(state.root), wire.public_key_text(state.collector_key), state.agent_id)
    assert cache.load() is None
    document = sign_bundle(state.collector_key, state.agent_id, [small_policy()], waivers=[WAIVER])
    bundle = cache.accept(document, None)
    assert [p.id for p in bundle.policies] == ["small"] and bundle.waivers[0].id == "w-1"
    assert bundle.groups == ("servers",) and bundle.etag == "etag-1"
    reloaded = cache.load()
    assert reloaded is not None and reloaded.policies[0].sha256 == bundle.policies[0].sha256
    assert cache.etag() == "etag-1"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda d: d["payload"]["policies"][0]["checks"][0]["expect"].update(eq=False), "altered"),
        (lambda d: d["payload"].update(group="admins"), "altered"),
        (lambda d: d["signature"].update(value=d["signature"]["value"][::-1]), "altered|base64"),
        (lambda d: d.pop("signature"), "signature is missing"),
    ],
)
def test_a_tampered_bundle_is_refused(tmp_path: Path, tamper: object, reason: str) -> None:
    state = make_state(tmp_path / "state")
    document = copy.deepcopy(sign_bundle(state.collector_key, state.agent_id, [small_policy()]))
    tamper(document)  # type: ignore[operator]
    with pytest.raises(PolicyRefused, match=reason):
        verify_bundle(document, wire.public_key_text(state.collector_key), state.agent_id)


def test_a_bundle_signed_by_another_key_or_for_another_agent_is_refused(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state")
    pinned = wire.public_key_text(state.collector_key)
    impostor = sign_bundle(wire.generate_key(), state.agent_id, [small_policy()])
    with pytest.raises(PolicyRefused, match="signed by another key"):
        verify_bundle(impostor, pinned, state.agent_id)
    someone_elses = sign_bundle(state.collector_key, "ag-" + "0" * 32, [small_policy()])
    with pytest.raises(PolicyRefused, match="issued to 'ag-0000"):
        verify_bundle(someone_elses, pinned, state.agent_id)


def test_an_invalid_policy_in_a_signed_bundle_is_refused_with_the_problem(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state")
    broken = small_policy()
    broken["checks"][0]["severity"] = "apocalyptic"
    document = sign_bundle(state.collector_key, state.agent_id, [broken])
    with pytest.raises(PolicyRefused, match=r"invalid content: bundle etag-1 policies\[0\].*severity"):
        verify_bundle(document, wire.public_key_text(state.collector_key), state.agent_id)


def test_refusal_keeps_the_last_good_bundle_and_rollback_is_refused(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state")
    paths = StatePaths(state.root)
    cache = PolicyCache(paths, wire.public_key_text(state.collector_key), state.agent_id)
    good = cache.accept(
        sign_bundle(state.collector_key, state.agent_id, [small_policy()], issued_at="2026-02-01T00:00:00Z"), None
    )
    before = paths.policy_bundle.read_bytes()
    bad = sign_bundle(wire.generate_key(), state.agent_id, [small_policy()], etag="etag-2")
    with pytest.raises(PolicyRefused):
        cache.accept(bad, good)
    older = sign_bundle(
        state.collector_key, state.agent_id, [small_policy()], etag="etag-0", issued_at="2026-01-01T00:00:00Z"
    )
    with pytest.raises(PolicyRefused, match="older than the one in force"):
        cache.accept(older, good)
    assert paths.policy_bundle.read_bytes() == before


def test_a_bundle_edited_on_disk_is_refused_when_loaded(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state", policies=[small_policy()])
    paths = StatePaths(state.root)
    document = json.loads(paths.policy_bundle.read_text())
    document["payload"]["policies"][0]["checks"][0]["severity"] = "info"
    paths.policy_bundle.write_text(json.dumps(document))
    cache = PolicyCache(paths, wire.public_key_text(state.collector_key), state.agent_id)
    with pytest.raises(PolicyRefused, match="cached policy bundle .* altered"):
        cache.load()
