"""OCSF Compliance Finding events (class 2003, OCSF 1.5) for an evidence pack, one per result.

Built as plain dicts (an export may hold millions); tests check every event against py-ocsf-models'
`ComplianceFinding`. The compliance status is Pass, Fail, Warning (the check could not tell: an error)
or Unknown (not applicable); a waived result is a suppressed finding whose own status is kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from checks import __version__

OCSF_VERSION = "1.5.0"
_SEVERITY = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"),
             "critical": (5, "Critical")}  # fmt: skip
_COMPLIANCE = {"pass": (1, "Pass"), "fail": (3, "Fail"), "error": (2, "Warning"), "not_applicable": (0, "Unknown")}
_FRAMEWORKS = {"cyber_essentials": "Cyber Essentials", "ncsc_caf": "NCSC CAF", "cis_controls_v8": "CIS Controls v8"}


def _ms(moment: str | None) -> int | None:
    if not moment:
        return None
    parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def finding(row: dict[str, Any], at_ms: int) -> dict[str, Any]:
    """One result row of the pack (see evidence_results.RESULT_COLUMNS, with frameworks and facts as objects)."""
    status = row["status"]
    own = row.get("waived_status") or status
    severity_id, severity = _SEVERITY.get(row.get("severity") or "", (0, "Unknown"))
    compliance_id, compliance = _COMPLIANCE.get(own, (0, "Unknown"))
    standards = [
        f"{_FRAMEWORKS.get(framework, framework)}: {control}"
        for framework, controls in sorted((row.get("frameworks") or {}).items())
        for control in controls or []
    ]
    title = row.get("title") or row["check"]
    uid = f"{row['subject_kind']}:{row['subject_id']}:{row['policy']}:{row['check']}:{row['since']}"
    event: dict[str, Any] = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "type_uid": 200301,
        "type_name": "Compliance Finding: Create",
        "time": at_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 3 if status == "waived" else (1 if own in ("fail", "error") else 4),
        "status": "Suppressed" if status == "waived" else ("New" if own in ("fail", "error") else "Resolved"),
        "message": f"{title}: {compliance.lower()} on {row.get('subject_name') or row['subject_id']}",
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Rampart", "vendor_name": "Rampart", "version": __version__},
            "uid": uid,
        },
        "finding_info": {
            "uid": uid,
            "title": row.get("title") or row["check"],
            "desc": row.get("reason") or "",
            "first_seen_time": _ms(row.get("since")),
        },
        "compliance": {
            "control": row["check"],
            "standards": standards,
            "status_id": compliance_id,
            "checks": [
                {
                    "uid": f"{row['policy']}/{row['check']}",
                    "name": row.get("title") or row["check"],
                    "severity": severity,
                    "severity_id": severity_id,
                    "version": row.get("policy_hash") or None,
                }
            ],
        },
        "resources": [
            {
                "uid": row["subject_id"],
                "name": row.get("subject_name") or row["subject_id"],
                "type": row["subject_kind"],
                "group": {"name": row.get("group") or ""},
            }
        ],
        "unmapped": {
            "rampart": {
                "status": status,
                "own_status": own,
                "waiver_id": row.get("waiver_id"),
                "policy_hash": row.get("policy_hash"),
                "report_id": row.get("report_id"),
                "observed": row.get("observed"),
                "expectation": row.get("expectation"),
            }
        },
    }
    return event
