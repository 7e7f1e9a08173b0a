"""Every probe keeps its contract: its example is a valid policy, its facts match its declared types."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from checks.policy.evaluate import CachingRunner, evaluate_policy
from checks.policy.loader import load_policy_text
from checks.policy.schema import policy_schema, waiver_schema
from checks.probes import registry
from checks.probes.host import ProbeError
from checks.probes.local import LocalHost
from checks.probes.registry import object_schema
from checks.results import Status, Subject, SubjectKind
from policies import shipped_policies

PROBES = list(registry.all_probes())


def test_schemas_are_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(policy_schema())
    jsonschema.Draft202012Validator.check_schema(waiver_schema())


@pytest.mark.parametrize("path", shipped_policies(), ids=lambda p: p.name)
def test_shipped_policies_validate_against_the_editor_schema(path: Any) -> None:
    document = yaml.safe_load(path.read_text())
    errors = list(jsonschema.Draft202012Validator(policy_schema()).iter_errors(document))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("spec", PROBES, ids=lambda s: s.name)
def test_probe_declares_itself(spec: registry.ProbeSpec) -> None:
    assert spec.description and spec.facts and spec.collectors
    assert spec.example, f"probe {spec.name} has no YAML example"
    for field in spec.facts + spec.params:
        assert field.description, f"{spec.name}.{field.name} has no description"


@pytest.mark.parametrize("spec", PROBES, ids=lambda s: s.name)
def test_probe_example_is_a_valid_policy_and_runs(spec: registry.ProbeSpec) -> None:
    text = 'id: example\nversion: "1"\ntitle: Example\nchecks:\n' + "".join(
        "  " + line + "\n" for line in spec.example.splitlines()
    )
    policy = load_policy_text(text, f"{spec.name} example")
    if "linux" not in spec.platforms:
        return
    evaluation = evaluate_policy(
        policy, subject=Subject(SubjectKind.HOST, "t"), platform="linux", run_probe=CachingRunner(LocalHost())
    )
    for result in evaluation.results:
        assert result.status in (Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE)
        if result.status is Status.ERROR:
            assert result.reason


# Representative parameters for running each Linux collector on this machine.
LIVE_PARAMS: dict[str, dict[str, Any]] = {
    "file": {"path": "/etc/passwd", "hash": True},
    "file_content": {"path": "/etc/passwd"},
    "key_value_file": {"path": "/etc/login.defs"},
    "command": {"argv": ["id", "-u"], "parse": "lines"},
    "sysctl": {"name": "kernel.pid_max"},
    "service": {"name": "ssh"},
    "package": {"name": "bash"},
    "process": {"name": "python3"},
    "os": {},
}


@pytest.mark.parametrize("spec", [s for s in PROBES if "linux" in s.platforms], ids=lambda s: s.name)
def test_linux_facts_match_the_declared_types(spec: registry.ProbeSpec) -> None:
    params = spec.params_with_defaults(LIVE_PARAMS.get(spec.name, {}))
    try:
        facts = spec.collectors["linux"](LocalHost(), params)
    except ProbeError as exc:
        pytest.skip(f"{spec.name} cannot run here: {exc.reason}")
    schema = object_schema(spec.facts)
    schema["required"] = [f.name for f in spec.facts if f.required]
    jsonschema.validate(facts, schema)
