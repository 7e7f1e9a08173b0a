"""Reading the newest daily Secure Score snapshots from Graph, as many as the trend needs."""

from __future__ import annotations

from typing import Any

from checks.probes.cloud.common import graph_items
from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.entra_secure_score.parse import score_trend
from checks.probes.registry import Facts, Params

SECURE_SCORES_PATH = "/v1.0/security/secureScores"


def collect_secure_score(context: CloudContext, params: Params) -> Facts:
    wanted = max(1, int(params["trend_days"]) + 1)
    snapshots: list[dict[str, Any]] = []
    for item in graph_items(context, SECURE_SCORES_PATH, {"$top": str(wanted)}):
        snapshots.append(item)
        if len(snapshots) >= wanted:
            break
    return score_trend(snapshots, int(params["trend_days"]))
