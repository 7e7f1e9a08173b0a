"""The fact contract on every recorded host: each endpoint probe's facts have the types its spec declares.

`tests/checks/test_probe_contract.py` checks the Linux collectors on this machine only. Here every endpoint
probe that runs on a recorded host's platform runs on that recording (`ReplayHost`), with the parameters
of its spec's YAML example and with those the shipped policies give it (the recordings were made for
them, so those reach the parsers), and every fact it returns is judged against the spec
(`fact_problems`, the evaluator's strict mode). A probe that cannot read its source there raises
`ProbeError`: a fine answer, listed in the test's output. Probes are found through the registry alone,
wherever their modules live.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from checks.policy.contract import fact_problems
from checks.policy.evaluate import resolve_params
from checks.policy.loader import load_policy_file, load_policy_text
from checks.policy.model import Policy, ProbeRef
from checks.probes import registry
from checks.probes.host import ProbeError
from checks.probes.replay import ReplayHost
from policies import shipped_policies
from tests.conftest import DATA

HOSTS = sorted(path.parent for path in (DATA / "hosts").glob("*/host.json"))
ENDPOINT_PROBES = [spec for spec in registry.all_probes() if spec.scope == "host"]


def platform_of(host: Path) -> str:
    return str(json.loads((host / "host.json").read_text(encoding="utf-8"))["platform"])


def refs_of(policy: Policy, probe: str) -> list[ProbeRef]:
    """Every invocation of a probe in a policy (a check's, an applicable_if's), its inputs' defaults in place."""
    refs = [check.probe for check in policy.checks]
    refs += [check.applicable_if.probe for check in policy.checks if check.applicable_if is not None]
    inputs = policy.inputs_for(())
    return [resolve_params(ref, inputs) for ref in refs if ref.name == probe]


@cache
def shipped() -> tuple[Policy, ...]:
    return tuple(load_policy_file(path) for path in shipped_policies())


def invocations(spec: registry.ProbeSpec) -> list[ProbeRef]:
    text = 'id: example\nversion: "1"\ntitle: Example\nchecks:\n' + "".join(
        "  " + line + "\n" for line in spec.example.splitlines()
    )
    refs = refs_of(load_policy_text(text, f"{spec.name} example"), spec.name)
    refs += [ref for policy in shipped() for ref in refs_of(policy, spec.name)]
    unique = {json.dumps(ref.params, sort_keys=True): ref for ref in refs}
    return list(unique.values()) or [ProbeRef(spec.name, {})]


def cases() -> list[tuple[Path, registry.ProbeSpec]]:
    return [(host, spec) for host in HOSTS for spec in ENDPOINT_PROBES if platform_of(host) in spec.collectors]


def run(host: Path, spec: registry.ProbeSpec) -> list[tuple[ProbeRef, Any, str]]:
    """(invocation, facts, why there are none) for each invocation the host's platform allows."""
    platform = platform_of(host)
    answers: list[tuple[ProbeRef, Any, str]] = []
    for ref in invocations(spec):
        params = spec.params_with_defaults(ref.params)
        refused = registry.param_problems(spec, params, platform)
        if refused:  # another platform's parameters (a Debian package name on Windows)
            answers.append((ref, None, f"not run: {refused}"))
            continue
        try:
            # The collector itself, not `collect`, which makes a crash an error result: here it must fail.
            answers.append((ref, spec.collectors[platform](ReplayHost(host), params), ""))
        except ProbeError as exc:
            answers.append((ref, None, f"probe error: {exc.reason}"))
    return answers


def test_there_are_recordings_of_every_endpoint_platform() -> None:
    assert {platform_of(host) for host in HOSTS} == set(registry.PLATFORMS)


@pytest.mark.parametrize(("host", "spec"), cases(), ids=lambda v: v.name)
def test_facts_on_the_recorded_host_keep_the_spec(host: Path, spec: registry.ProbeSpec) -> None:
    for ref, facts, why_none in run(host, spec):
        if why_none:
            print(f"{host.name}: {spec.name} {ref.params}: {why_none}")
            continue
        assert fact_problems(spec, facts, complete=True) == [], f"{spec.name} {ref.params} on {host.name}: {facts}"


def test_the_recordings_answer_most_probes() -> None:
    """The contract is judged on facts: recordings on which the probes only errored would prove little."""
    answered = {(host.name, spec.name) for host, spec in cases() if any(not why for _, _, why in run(host, spec))}
    for host in HOSTS:  # every recording gives facts for some probe
        assert any(name == host.name for name, _ in answered), host.name
    # And every endpoint probe gives facts on some recording, but `command`: its example runs `find`, which no
    # recording holds, and no shipped policy runs a command (its facts are those of any command run); and
    # `time_sync`: no recorded machine ran systemd as PID 1 (its recordings are in tests/data/probes/time_sync/,
    # checked fact by fact in tests/checks/probes/test_time_sync.py).
    silent = {spec.name for spec in ENDPOINT_PROBES} - {name for _, name in answered}
    assert silent <= {"command", "time_sync"}, silent
