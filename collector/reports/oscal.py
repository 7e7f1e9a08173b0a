"""An OSCAL assessment-results document (OSCAL 1.x) for an evidence pack, validated by compliance-trestle's
models before it is written (an invalid document fails the export rather than reach an auditor).

One result for the period. Each check is an observation (method TEST: the agents and the cloud checks
observe, nothing is asked) with its counts and a pointer to its rows in results.csv; each framework
control the checks evidence is a finding whose target is that control, satisfied when none of its checks
fails and at least one passes. Control ids are made OSCAL tokens: `ce-firewalls`, `caf-b4.d`,
`cis-7.3`. The pack holds no separate assessment plan: `import-ap` points at the policies in the pack,
which say what was assessed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from checks import __version__

NAMESPACE = "urn:rampart:evidence"
PREFIXES = {"cyber_essentials": "ce", "ncsc_caf": "caf", "cis_controls_v8": "cis"}
FRAMEWORK_NAMES = {"cyber_essentials": "Cyber Essentials", "ncsc_caf": "NCSC CAF", "cis_controls_v8": "CIS Controls v8"}
_UUIDS = uuid.UUID("6f1c9a52-3a51-4b43-9d8e-5a0e7f0c2b11")  # namespace for ids derived from names


def control_token(framework: str, control: str) -> str:
    return f"{PREFIXES.get(framework, framework)}-{control}".lower().replace(" ", "_")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_UUIDS, "/".join(parts)))


def _time(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.UTC).isoformat()


def document(
    *,
    title: str,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    checks: Mapping[tuple[str, str], Mapping[str, Any]],
    counts: Mapping[tuple[str, str], Mapping[str, int]],
    frameworks: set[str] | None,
    pack_id: str,
) -> dict[str, Any]:
    """The document in OSCAL's JSON form. `checks`: (policy, check) -> catalogue entry (title, severity,
    frameworks); `counts`: (policy, check) -> results per status at the end of the period."""
    observations = []
    by_control: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key in sorted(counts):
        policy_id, check_id = key
        entry = checks.get(key, {})
        tally = counts[key]
        summary = ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))
        observations.append(
            {
                "uuid": _uuid(pack_id, "observation", policy_id, check_id),
                "title": str(entry.get("title") or check_id),
                "description": f"Check {policy_id}/{check_id} ({entry.get('severity') or 'unknown severity'}) at "
                f"the end of the period: {summary}.",
                "props": [
                    {"name": f"{status}-count", "value": str(n), "ns": NAMESPACE} for status, n in sorted(tally.items())
                ],
                "methods": ["TEST"],
                "collected": _time(end),
                "relevant-evidence": [
                    {
                        "href": "results.csv",
                        "description": f"The rows of results.csv with policy {policy_id} and check {check_id}",
                    }
                ],
            }
        )
        for framework, controls in (entry.get("frameworks") or {}).items():
            if frameworks is not None and framework not in frameworks:
                continue
            for control in controls or []:
                by_control.setdefault((framework, str(control)), []).append(key)
    findings = []
    for (framework, control), keys in sorted(by_control.items()):
        failed = sum(counts[k].get("fail", 0) for k in keys)
        passed = sum(counts[k].get("pass", 0) for k in keys)
        errors = sum(counts[k].get("error", 0) for k in keys)
        satisfied = failed == 0 and passed > 0
        findings.append(
            {
                "uuid": _uuid(pack_id, "finding", framework, control),
                "title": f"{FRAMEWORK_NAMES.get(framework, framework)} {control}",
                "description": f"{len(keys)} check(s) evidence this control: {passed} results pass, {failed} "
                f"fail, {errors} could not be judged (errors).",
                "target": {
                    "type": "objective-id",
                    "target-id": control_token(framework, control),
                    "status": {
                        "state": "satisfied" if satisfied else "not-satisfied",
                        "reason": "pass" if satisfied else ("fail" if failed else "other"),
                    },
                },
                "related-observations": [{"observation-uuid": _uuid(pack_id, "observation", p, c)} for p, c in keys],
            }
        )
    import trestle.oscal

    selected = [{"control-id": control_token(f, c)} for f, c in sorted(by_control)]
    result: dict[str, Any] = {
        "uuid": _uuid(pack_id, "result"),
        "title": title,
        "description": "Rampart results in force at the end of the period, by check and framework control.",
        "start": _time(start),
        "end": _time(end),
        "reviewed-controls": {
            "control-selections": [{"include-controls": selected} if selected else {"include-all": {}}]
        },
    }
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    return {
        "assessment-results": {
            "uuid": _uuid(pack_id, "assessment-results"),
            "metadata": {
                "title": title,
                "last-modified": _time(now),
                "version": __version__,
                "oscal-version": str(trestle.oscal.OSCAL_VERSION),  # the models' own version
            },
            "import-ap": {
                "href": "policies/index.json",
                "remarks": "No separate assessment plan: the policies in force, in this pack, say what was assessed.",
            },
            "results": [result],
        }
    }


def validated_json(data: dict[str, Any]) -> str:
    """The document checked against compliance-trestle's OSCAL models, serialised by them."""
    from trestle.oscal.assessment_results import AssessmentResults

    model = AssessmentResults.model_validate(data["assessment-results"])
    return str(model.oscal_serialize_json(pretty=True))
