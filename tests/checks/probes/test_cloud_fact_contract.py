"""The fact contract for cloud probes: on every recorded Graph and ARM response, each probe's facts have
the types its spec declares, every recording is complete and read in full, and says where it comes from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checks.probes import registry
from checks.probes.host import ProbeError
from checks.probes.registry import CLOUD_PLATFORMS, ResourceFacts, object_schema
from tests.support.cloud_replay import (
    RECORDINGS,
    Unrecorded,
    all_recordings,
    recording,
    recording_dirs,
    url_key,
)

CLOUD_PROBES = [spec for spec in registry.all_probes() if set(spec.platforms) <= set(CLOUD_PLATFORMS)]
RECORDED = all_recordings()


def _ids(item: tuple[str, Path]) -> str:
    return f"{item[0]}/{item[1].name}"


def _facts_schema(spec: registry.ProbeSpec) -> dict[str, Any]:
    schema = object_schema(spec.facts)
    schema["required"] = [f.name for f in spec.facts if f.required]
    return schema


def _run(probe_id: str, folder: Path) -> tuple[Any, Any]:
    spec = registry.get(probe_id)
    assert spec is not None, f"recordings for an unknown probe: {folder}"
    (platform,) = spec.platforms
    context = recording(probe_id, folder.name, platform)
    try:
        return spec.collectors[platform](context, spec.params_with_defaults({})), context
    except ProbeError:
        return None, context  # a recorded failure: no facts, and the error is the probe's own test's concern


@pytest.mark.parametrize("spec", CLOUD_PROBES, ids=lambda s: s.name)
def test_every_cloud_probe_has_a_recording(spec: registry.ProbeSpec) -> None:
    assert recording_dirs(spec.name), f"no recording under tests/data/probes/{spec.name}/"


@pytest.mark.parametrize("item", RECORDED, ids=_ids)
def test_facts_on_each_recording_match_the_declared_types(item: tuple[str, Path]) -> None:
    probe_id, folder = item
    spec = registry.get(probe_id)
    assert spec is not None
    facts, _ = _run(probe_id, folder)
    schema = _facts_schema(spec)
    if spec.scope == "resource":
        assert isinstance(facts, list)
        for resource in facts:
            assert isinstance(resource, ResourceFacts)
            if resource.error is None:
                jsonschema.validate(resource.facts, schema)
    elif facts is not None:
        jsonschema.validate(facts, schema)


def test_a_fact_of_the_wrong_type_is_caught() -> None:
    spec = registry.get("entra_global_admins")
    assert spec is not None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"count": "3", "principal_ids": []}, _facts_schema(spec))


@pytest.mark.parametrize("item", RECORDED, ids=_ids)
def test_every_recorded_response_is_read(item: tuple[str, Path]) -> None:
    """A response the probe never asks for is a recording that no longer tests what it says."""
    probe_id, folder = item
    _, context = _run(probe_id, folder)
    asked = {url_key(url) for url in context.requested}
    unread = [key for key in context.responses if key not in asked]
    assert not unread, f"{folder}: recorded but never requested: {unread}"


@pytest.mark.parametrize("item", RECORDED, ids=_ids)
def test_every_file_is_replayed_and_has_a_source(item: tuple[str, Path]) -> None:
    probe_id, folder = item
    manifest = json.loads((folder / "replay.json").read_text())
    replayed = {entry["file"] for entry in manifest["responses"]}
    files = {path.name for path in folder.iterdir()} - {"replay.json"}
    assert files == replayed, f"{folder}: files and replay.json disagree"
    sources = (RECORDINGS / probe_id / "SOURCES.md").read_text(encoding="utf-8")
    missing = [name for name in sorted(files | {"replay.json"}) if f"`{folder.name}/{name}`" not in sources]
    assert not missing, f"{folder}: no SOURCES.md entry for {missing}"
    assert f"`{folder.name}`" in sources
    for entry in manifest["responses"]:
        body = json.loads((folder / entry["file"]).read_text())
        if int(entry.get("status", 200)) >= 300:
            # Graph and ARM both document errors as {"error": {"code": ..., "message": ...}}.
            assert body["error"]["code"] and body["error"]["message"], entry["file"]
        elif "value" in body:
            assert isinstance(body["value"], list), entry["file"]


def test_paging_and_errors_are_recorded() -> None:
    """At least one paged collection of each API, and error bodies, so the replay covers both."""
    graph_links = arm_links = errors = 0
    for _, folder in RECORDED:
        for path in folder.glob("*.json"):
            body = json.loads(path.read_text())
            graph_links += "@odata.nextLink" in body
            arm_links += "nextLink" in body
            errors += "error" in body
    assert graph_links >= 1 and arm_links >= 1 and errors >= 1


def test_the_replay_follows_next_links_and_refuses_what_it_has_not_recorded() -> None:
    context = recording("entra_global_admins", "paged-assignments", "microsoft365")
    query = {"$filter": "roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'"}
    assert len(list(context.graph_pages("/v1.0/roleManagement/directory/roleAssignments", query))) == 2
    with pytest.raises(Unrecorded, match="/v1.0/users"):
        context.graph_get("/v1.0/users")
