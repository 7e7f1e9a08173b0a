"""Is legacy authentication blocked: security defaults, or the enabled policies that block legacy clients."""

from __future__ import annotations

from checks.probes.cloud.conditional_access import (
    common_facts,
    counted,
    covered_by,
    legacy_block_gaps,
    read_policies,
    sort_policies,
)
from checks.probes.cloud.context import CloudContext
from checks.probes.registry import Facts, Params


def collect_legacy_auth(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = sort_policies(tenant, legacy_block_gaps)
    blocked_by = covered_by(tenant, counting)
    return {
        "blocked": bool(blocked_by),
        "blocked_by": blocked_by,
        "policies": [counted(p) for p in counting],
        **common_facts(tenant, counting, not_counted),
    }
