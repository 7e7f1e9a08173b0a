"""Reading the Global Administrator role assignments from Graph's roleManagement (which pages)."""

from __future__ import annotations

from checks.probes.cloud.common import graph_items
from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.entra_global_admins.parse import GLOBAL_ADMINISTRATOR, global_admin_facts
from checks.probes.registry import Facts, Params

ROLE_ASSIGNMENTS_PATH = "/v1.0/roleManagement/directory/roleAssignments"


def collect_global_admins(context: CloudContext, params: Params) -> Facts:
    query = {"$filter": f"roleDefinitionId eq '{GLOBAL_ADMINISTRATOR}'"}
    return global_admin_facts(graph_items(context, ROLE_ASSIGNMENTS_PATH, query))
