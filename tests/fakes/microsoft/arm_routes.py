"""Resource Manager under `/arm`: subscriptions and the resources the Azure probes list, paged with
`nextLink`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from tests.fakes.microsoft.arm import arm_id
from tests.fakes.microsoft.handler import HandlerBase
from tests.fakes.microsoft.wire import Reply, arm_error, decode_skiptoken, encode_skiptoken, first, retry


class ArmRoutes(HandlerBase):
    def _arm(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if not self._bearer("arm"):
            return 401, arm_error("InvalidAuthenticationToken", "The access token is invalid."), {}
        if not first(query, "api-version"):
            return (
                400,
                arm_error(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ),
                {},
            )
        fault = self.owner.fault_for(path)
        if fault is not None:
            return fault.status, arm_error(fault.code, fault.message or fault.code), retry(fault)
        scenario = self.owner.scenario
        if path == "/subscriptions":
            rows = [
                {
                    "id": f"/subscriptions/{s.id}",
                    "subscriptionId": s.id,
                    "tenantId": scenario.tenant_id,
                    "displayName": s.name,
                    "state": "Enabled",
                }
                for s in scenario.subscriptions
            ]
            return self._arm_page(path, query, rows)
        parts = path.strip("/").split("/")
        subscription = next((s for s in scenario.subscriptions if len(parts) > 1 and s.id == parts[1]), None)
        if subscription is None:
            return (
                404,
                arm_error(
                    "SubscriptionNotFound",
                    f"The subscription '{parts[1] if len(parts) > 1 else ''}' could not be found.",
                ),
                {},
            )
        provider = "/".join(parts[2:])
        lists: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "providers/Microsoft.Storage/storageAccounts": lambda: subscription.storage,
            "providers/Microsoft.Network/networkSecurityGroups": lambda: subscription.nsgs,
            "providers/Microsoft.KeyVault/vaults": lambda: subscription.vaults,
            "providers/Microsoft.Security/pricings": lambda: subscription.pricings,
            "providers/Microsoft.Sql/servers": lambda: [
                {
                    "id": arm_id(subscription.id, "Microsoft.Sql/servers", server),
                    "name": server,
                    "type": "Microsoft.Sql/servers",
                    "location": "uksouth",
                    "properties": {"state": "Ready", "version": "12.0"},
                }
                for server in subscription.sql
            ],
        }
        if provider in lists:
            return self._arm_page(path, query, lists[provider]())
        # /subscriptions/{s}/resourceGroups/rg-main/providers/Microsoft.Sql/servers/{server}/databases[/{db}/...]
        if len(parts) >= 9 and parts[4:7] == ["providers", "Microsoft.Sql", "servers"]:
            server = parts[7]
            databases = subscription.sql.get(server)
            if databases is None or parts[8] != "databases":
                return (
                    404,
                    arm_error("ResourceNotFound", f"The Resource 'Microsoft.Sql/servers/{server}' was not found."),
                    {},
                )
            server_id = arm_id(subscription.id, "Microsoft.Sql/servers", server)
            if len(parts) == 9:
                rows = [
                    {
                        "id": f"{server_id}/databases/{db}",
                        "name": db,
                        "type": "Microsoft.Sql/servers/databases",
                        "location": "uksouth",
                    }
                    for db in ["master", *databases]
                ]
                return self._arm_page(path, query, rows)
            if len(parts) == 12 and parts[10:12] == ["transparentDataEncryption", "current"]:
                db = parts[9]
                state = "Enabled" if db == "master" else databases.get(db)
                if state is None:
                    return 404, arm_error("ResourceNotFound", f"Database '{db}' was not found."), {}
                return (
                    200,
                    {
                        "id": f"{server_id}/databases/{db}/transparentDataEncryption/Current",
                        "name": "Current",
                        "type": "Microsoft.Sql/servers/databases/transparentDataEncryption",
                        "properties": {"state": state},
                    },
                    {},
                )
        return 404, arm_error("InvalidResourceType", f"The resource type could not be found for '{path}'."), {}

    def _arm_page(self, path: str, query: dict[str, list[str]], rows: list[dict[str, Any]]) -> Reply:
        size = self.owner.scenario.arm_page_size
        offset = decode_skiptoken(first(query, "$skiptoken"))
        if offset is None:
            return 400, arm_error("InvalidSkipToken", "The skip token is not valid."), {}
        body: dict[str, Any] = {"value": rows[offset : offset + size]}
        if offset + size < len(rows):
            kept = {k: v[-1] for k, v in query.items() if k != "$skiptoken"}
            kept["$skiptoken"] = encode_skiptoken(offset + size)
            body["nextLink"] = f"{self.owner.arm_url}{path}?{urlencode(kept, quote_via=quote, safe='$,')}"
        return 200, body, {}
