"""Entra ID tenant settings: Global Administrator count, weak authentication methods, Secure Score."""

from __future__ import annotations

import datetime as dt
from typing import Any

from checks.probes.cloud.common import cloud_collector, graph_items, lower_all
from checks.probes.cloud.context import CloudContext
from checks.probes.host import ProbeError
from checks.probes.registry import Facts, Field, Params, ProbeSpec, register

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ROLE_ASSIGNMENTS_PATH = "/v1.0/roleManagement/directory/roleAssignments"
METHODS_POLICY_PATH = "/v1.0/policies/authenticationMethodsPolicy"
SECURE_SCORES_PATH = "/v1.0/security/secureScores"
MAX_LISTED_ADMINS = 100  # a tenant with more Global Administrators than this has a bigger problem

# --- Global Administrators -------------------------------------------------------------------------------

GLOBAL_ADMINS = register(
    ProbeSpec(
        name="entra_global_admins",
        description="Principals holding the Global Administrator role (active assignments, read from "
        "roleManagement, which pages; /directoryRoles does not)",
        scope="tenant",
        permissions=("RoleManagement.Read.Directory (Microsoft Graph application permission)",),
        facts=(
            Field("count", "integer", "Distinct principals assigned Global Administrator"),
            Field("principal_ids", "array", "Their object ids (first 100)", items="string"),
        ),
        example="""\
- id: global-admin-count
  title: Two to four Global Administrators
  description: Counts principals assigned the Global Administrator role.
  rationale: One admin is a single point of failure; many widen the target.
  remediation: Keep two to four Global Administrators; use least-privileged roles for the rest.
  severity: high
  platforms: [microsoft365]
  probe: entra_global_admins
  expect:
    all:
      - {fact: count, gte: 2}
      - {fact: count, lte: 4}
""",
    )
)


@cloud_collector(GLOBAL_ADMINS, "microsoft365")
def collect_global_admins(context: CloudContext, params: Params) -> Facts:
    principals: set[str] = set()
    query = {"$filter": f"roleDefinitionId eq '{GLOBAL_ADMINISTRATOR}'"}
    for assignment in graph_items(context, ROLE_ASSIGNMENTS_PATH, query):
        # The filter is the server's job, but an assignment of another role must never be counted.
        if str(assignment.get("roleDefinitionId") or "").lower() != GLOBAL_ADMINISTRATOR:
            continue
        if assignment.get("principalId"):
            principals.add(str(assignment["principalId"]))
    return {"count": len(principals), "principal_ids": sorted(principals)[:MAX_LISTED_ADMINS]}


# --- authentication methods ------------------------------------------------------------------------------

AUTH_METHODS = register(
    ProbeSpec(
        name="entra_auth_methods",
        description="Authentication methods enabled in the tenant's authentication methods policy, and which "
        "of them are weak (SMS, voice and email by default)",
        scope="tenant",
        permissions=("Policy.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "weak_methods",
                "array",
                "Method ids counted as weak (case does not matter)",
                items="string",
                required=False,
                default=["sms", "voice", "email"],
            ),
        ),
        facts=(
            Field(
                "methods",
                "array",
                "Every method configuration",
                fields=(
                    Field("id", "string", "Method id, e.g. Sms, Fido2, MicrosoftAuthenticator"),
                    Field("state", "string", "enabled or disabled"),
                ),
            ),
            Field("enabled_methods", "array", "Ids of enabled methods (lower case)", items="string"),
            Field("enabled_weak_methods", "array", "Ids of enabled weak methods (lower case)", items="string"),
        ),
        example="""\
- id: weak-methods-off
  title: SMS, voice and email sign-in methods are off
  description: Reads the authentication methods policy.
  rationale: SMS and voice codes are intercepted by SIM swapping; email codes by mailbox compromise.
  remediation: Disable the SMS, Voice call and Email OTP methods; move users to Authenticator or FIDO2.
  severity: medium
  platforms: [microsoft365]
  probe: entra_auth_methods
  expect: {fact: enabled_weak_methods, count: {eq: 0}}
""",
    )
)


def enabled_methods(document: dict[str, Any], weak: list[str]) -> Facts:
    methods = [
        {"id": str(config.get("id") or ""), "state": str(config.get("state") or "")}
        for config in document.get("authenticationMethodConfigurations") or []
        if isinstance(config, dict)
    ]
    enabled = sorted(m["id"].lower() for m in methods if m["state"].lower() == "enabled")
    weak_set = set(lower_all(weak))
    return {
        "methods": methods,
        "enabled_methods": enabled,
        "enabled_weak_methods": [m for m in enabled if m in weak_set],
    }


@cloud_collector(AUTH_METHODS, "microsoft365")
def collect_auth_methods(context: CloudContext, params: Params) -> Facts:
    document = context.graph_get(METHODS_POLICY_PATH)
    if not isinstance(document.get("authenticationMethodConfigurations"), list):
        raise ProbeError(f"Graph {METHODS_POLICY_PATH}: no authenticationMethodConfigurations in the reply")
    return enabled_methods(document, params["weak_methods"])


# --- Secure Score ----------------------------------------------------------------------------------------

SECURE_SCORE = register(
    ProbeSpec(
        name="entra_secure_score",
        description="Microsoft Secure Score: the latest value as a percentage of the maximum, and its change "
        "over a period (daily snapshots)",
        scope="tenant",
        permissions=("SecurityEvents.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "trend_days",
                "integer",
                "Compare with the snapshot this many days before the latest (or the oldest available)",
                required=False,
                default=30,
            ),
        ),
        facts=(
            Field("current_score", "number", "Points scored"),
            Field("max_score", "number", "Points available"),
            Field("percent", "number", "current / max x 100, two decimals"),
            Field("measured_at", "string", "When the latest snapshot was taken"),
            Field("previous_percent", "number", "The percentage at the start of the period", nullable=True),
            Field("previous_measured_at", "string", "When that snapshot was taken", nullable=True),
            Field("change_points", "number", "percent - previous_percent", nullable=True),
            Field("trend", "string", "up, down or flat (null without an earlier snapshot)", nullable=True),
        ),
        example="""\
- id: secure-score
  title: Secure Score is at least 60% and not falling
  description: Reads the latest Microsoft Secure Score and its change over 30 days.
  rationale: Secure Score summarises many tenant settings; a falling score means settings drifted.
  remediation: Work through the Secure Score recommended actions in the Defender portal.
  severity: medium
  platforms: [microsoft365]
  probe: entra_secure_score
  expect:
    all:
      - {fact: percent, gte: 60}
      - {fact: trend, ne: down}
""",
    )
)


def _percent(snapshot: dict[str, Any]) -> float | None:
    current, maximum = snapshot.get("currentScore"), snapshot.get("maxScore")
    if not isinstance(current, int | float) or not isinstance(maximum, int | float) or maximum <= 0:
        return None
    return round(100.0 * current / maximum, 2)


def _when(snapshot: dict[str, Any]) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(snapshot["createdDateTime"]))
    except ValueError as exc:
        raise ProbeError(f"Secure Score snapshot has an unreadable date {snapshot['createdDateTime']!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def score_trend(snapshots: list[dict[str, Any]], trend_days: int) -> Facts:
    """Facts from daily snapshots in any order: the newest, and the one `trend_days` earlier."""
    dated = sorted(
        (s for s in snapshots if isinstance(s.get("createdDateTime"), str) and _percent(s) is not None),
        key=lambda s: str(s["createdDateTime"]),
        reverse=True,
    )
    if not dated:
        raise ProbeError("the tenant has no Secure Score snapshot yet (Microsoft computes it daily)")
    latest = dated[0]
    percent = _percent(latest)
    assert percent is not None
    earlier = None
    if len(dated) > 1:
        cutoff = _when(latest) - dt.timedelta(days=trend_days)
        # The newest snapshot at least `trend_days` older than the latest, else the oldest there is.
        earlier = next((s for s in dated[1:] if _when(s) <= cutoff), dated[-1])
    previous = _percent(earlier) if earlier else None
    change = None if previous is None else round(percent - previous, 2)
    trend = None if change is None else "up" if change > 0 else "down" if change < 0 else "flat"
    return {
        "current_score": float(latest["currentScore"]),
        "max_score": float(latest["maxScore"]),
        "percent": percent,
        "measured_at": str(latest["createdDateTime"]),
        "previous_percent": previous,
        "previous_measured_at": str(earlier["createdDateTime"]) if earlier else None,
        "change_points": change,
        "trend": trend,
    }


@cloud_collector(SECURE_SCORE, "microsoft365")
def collect_secure_score(context: CloudContext, params: Params) -> Facts:
    wanted = max(1, int(params["trend_days"]) + 1)
    snapshots: list[dict[str, Any]] = []
    for item in graph_items(context, SECURE_SCORES_PATH, {"$top": str(wanted)}):
        snapshots.append(item)
        if len(snapshots) >= wanted:
            break
    return score_trend(snapshots, int(params["trend_days"]))
