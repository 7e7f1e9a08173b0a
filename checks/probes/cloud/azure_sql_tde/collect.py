"""Reading each SQL server's databases and their transparent data encryption through Resource Manager."""

from __future__ import annotations

from collections.abc import Iterator

from checks.probes.cloud.azure_sql_tde.parse import tde_facts
from checks.probes.cloud.common import arm_items, explain, resource_facts
from checks.probes.cloud.context import CloudContext, CloudError
from checks.probes.registry import Params, ProbeSpec, ResourceFacts

SQL_API = "2021-11-01"


def list_databases(
    spec: ProbeSpec, context: CloudContext, subscription: str, params: Params
) -> Iterator[ResourceFacts]:
    servers = f"/subscriptions/{subscription}/providers/Microsoft.Sql/servers"
    for server in arm_items(context, servers, SQL_API):
        for database in arm_items(context, f"{server['id']}/databases", SQL_API):
            if str(database.get("name") or "").lower() == "master":
                continue
            try:
                tde = context.arm_get(f"{database['id']}/transparentDataEncryption/current", SQL_API)
            except CloudError as exc:
                # One unreadable database is an error of its own; the others are still judged.
                yield ResourceFacts(str(database["id"]), str(database.get("name") or ""), {}, explain(spec, exc))
                continue
            yield resource_facts(database, tde_facts(tde, server))
