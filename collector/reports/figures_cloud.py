"""The briefing's cloud figures: MFA in the Microsoft 365 tenants (from their daily observations), and
Azure findings per resource type."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.reports.figures_base import Moment, cloud_in_scope
from collector.storage import observations
from collector.storage.models import latest_results, result_intervals, subjects

MFA_POLICY = "microsoft365"
MFA_COVERAGE = "mfa-coverage"
MFA_ENFORCED = ("mfa-enforced", "admin-roles-require-mfa")
_PROVIDERS = re.compile(r"/providers/(.+)$", re.I)
RESOURCE_TYPES = {
    "microsoft.storage/storageaccounts": "Storage accounts",
    "microsoft.network/networksecuritygroups": "Network security groups",
    "microsoft.keyvault/vaults": "Key vaults",
    "microsoft.sql/servers/databases": "SQL databases",
    "microsoft.sql/servers": "SQL servers",
    "subscription": "Subscriptions (Defender plans)",
}


def resource_type(resource_id: str) -> str:
    """The ARM type of a resource id: /subscriptions/s/.../providers/Microsoft.Sql/servers/a/databases/b
    -> Microsoft.Sql/servers/databases; a bare subscription id -> subscription."""
    match = _PROVIDERS.search(resource_id)
    if not match:
        return "subscription" if resource_id.lower().startswith("/subscriptions/") else "other"
    parts = match.group(1).split("/")
    return "/".join([parts[0], *parts[1::2]])


def resource_type_name(kind: str) -> str:
    return RESOURCE_TYPES.get(kind.lower(), kind)


# --- MFA ---------------------------------------------------------------------------------------------


def _tenants(connection: Connection, group: str | None) -> list[Any]:
    if not cloud_in_scope(group):
        return []
    return list(
        connection.execute(
            sa.select(subjects.c.id, subjects.c.ext_id, subjects.c.name)
            .where(subjects.c.kind == "tenant")
            .order_by(subjects.c.name, subjects.c.ext_id)
        )
    )


def _mfa_facts(row: Any) -> dict[str, Any] | None:
    if row is None or not isinstance(row.observed, dict):
        return None
    facts = row.observed
    admins = [
        {"name": str(u.get("display_name") or ""), "sign_in": str(u.get("user_principal_name") or "")}
        for u in facts.get("admins_without_mfa_list") or []
        if isinstance(u, dict)
    ]
    return {
        "day": row.day.isoformat() if hasattr(row, "day") else None,
        "status": row.status,
        "coverage_percent": facts.get("coverage_percent"),
        "members": facts.get("members"),
        "without_mfa": facts.get("not_mfa_capable"),
        "admins": facts.get("admins"),
        "admins_without_mfa": facts.get("admins_without_mfa"),
        "admins_without_mfa_listed": admins,
        "listed_in_full": not facts.get("evidence_truncated", False),
    }


def mfa(
    connection: Connection,
    now: Moment,
    before: Moment | None,
    bucket_ends: list[dt.date],
    group: str | None,
    since: dt.date,
) -> list[dict[str, Any]]:
    """Per tenant: MFA coverage now and before, the rollout over the two periods, who lacks MFA."""
    found = []
    latest_now = {r.subject_id: r for r in observations.as_at(connection, MFA_POLICY, MFA_COVERAGE, now.day)}
    latest_before = (
        {r.subject_id: r for r in observations.as_at(connection, MFA_POLICY, MFA_COVERAGE, before.day)}
        if before
        else {}
    )
    history = observations.series(connection, MFA_POLICY, MFA_COVERAGE, since, now.day)
    for tenant in _tenants(connection, group):
        samples = [r for r in history if r.subject_id == tenant.id]
        curve: list[float | None] = []
        index, value = 0, None
        for bucket_end in bucket_ends:
            while index < len(samples) and samples[index].day <= bucket_end:
                observed = samples[index].observed if isinstance(samples[index].observed, dict) else {}
                value = observed.get("coverage_percent")
                index += 1
            curve.append(value)
        enforcement = {}
        for check_id in MFA_ENFORCED:
            row = connection.execute(
                sa.select(latest_results.c.status, latest_results.c.waived_status).where(
                    latest_results.c.subject_id == tenant.id,
                    latest_results.c.policy_id == MFA_POLICY,
                    latest_results.c.check_id == check_id,
                )
            ).first()
            then = None
            if not now.current:
                then = connection.execute(
                    sa.select(result_intervals.c.status).where(
                        result_intervals.c.subject_id == tenant.id,
                        result_intervals.c.policy_id == MFA_POLICY,
                        result_intervals.c.check_id == check_id,
                        result_intervals.c.valid_from < now.at,
                        sa.or_(result_intervals.c.valid_to.is_(None), result_intervals.c.valid_to >= now.at),
                    )
                ).scalar()
            enforcement[check_id] = (row.status if row else None) if now.current else then
        found.append(
            {
                "tenant": tenant.name or tenant.ext_id,
                "tenant_id": tenant.ext_id,
                "now": _mfa_facts(latest_now.get(tenant.id)),
                "before": _mfa_facts(latest_before.get(tenant.id)),
                "curve": curve,
                "enforced": enforcement,
            }
        )
    return found


# --- Azure resources -----------------------------------------------------------------------------------


def cloud_findings(connection: Connection, moment: Moment, group: str | None) -> dict[str, dict[str, int]]:
    """Per Azure resource type: resources, resources with a failing result, failing and error results."""
    if not cloud_in_scope(group):
        return {}
    if moment.current:
        query = sa.select(subjects.c.ext_id, latest_results.c.status).join(
            latest_results, latest_results.c.subject_id == subjects.c.id
        )
    else:
        intervals = result_intervals.c
        query = (
            sa.select(subjects.c.ext_id, intervals.status)
            .join(result_intervals, intervals.subject_id == subjects.c.id)
            .where(
                intervals.valid_from < moment.at, sa.or_(intervals.valid_to.is_(None), intervals.valid_to >= moment.at)
            )
        )
    by_type: dict[str, dict[str, Any]] = {}
    failing: dict[str, set[str]] = defaultdict(set)
    seen: dict[str, set[str]] = defaultdict(set)
    for ext_id, status in connection.execute(query.where(subjects.c.kind == "cloud_resource")):
        kind = resource_type(ext_id)
        entry = by_type.setdefault(kind, {"fail": 0, "error": 0, "pass": 0})
        if status in entry:
            entry[status] += 1
        seen[kind].add(ext_id)
        if status == "fail":
            failing[kind].add(ext_id)
    return {
        kind: {**entry, "resources": len(seen[kind]), "failing_resources": len(failing[kind])}
        for kind, entry in sorted(by_type.items())
    }
