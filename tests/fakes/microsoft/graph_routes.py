"""Graph under `/graph`: the registration report, policies, role assignments, directory objects and
Secure Score, paged with opaque `@odata.nextLink`s."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

from tests.fakes.microsoft.handler import HandlerBase
from tests.fakes.microsoft.wire import (
    Reply,
    decode_skiptoken,
    encode_skiptoken,
    filter_eq,
    first,
    graph_error,
    public,
    retry,
)


class GraphRoutes(HandlerBase):
    def _graph(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if not self._bearer("graph"):
            return 401, graph_error("InvalidAuthenticationToken", "Access token is empty or invalid."), {}
        fault = self.owner.fault_for(path)
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.status < 400:  # a slow but correct answer
                fault = None
        if fault is not None:
            return fault.status, graph_error(fault.code, fault.message or fault.code), retry(fault)
        scenario = self.owner.scenario
        select = first(query, "$select")
        if path == "/v1.0/reports/authenticationMethods/userRegistrationDetails":
            return self._graph_page(path, query, scenario.users, select, "userRegistrationDetails")
        if path == "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy":
            return (
                200,
                {
                    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/"
                    "identitySecurityDefaultsEnforcementPolicy/$entity",
                    "id": "00000000-0000-0000-0000-000000000005",
                    "displayName": "Security Defaults",
                    "description": "Security defaults is a set of basic identity security mechanisms "
                    "recommended by Microsoft.",
                    "isEnabled": scenario.security_defaults,
                },
                {},
            )
        if path == "/v1.0/identity/conditionalAccess/policies":
            return self._graph_page(path, query, scenario.ca_policies, select, "identity/conditionalAccess/policies")
        if path == "/v1.0/roleManagement/directory/roleAssignments":
            wanted = filter_eq(first(query, "$filter"), "roleDefinitionId")
            rows = [a for a in scenario.role_assignments if wanted is None or a["roleDefinitionId"] == wanted]
            if first(query, "$expand") == "principal":
                rows = [dict(a, principal=public(scenario.directory.get(a["principalId"]))) for a in rows]
            return self._graph_page(path, query, rows, select, "roleManagement/directory/roleAssignments")
        if path.startswith(("/v1.0/users/", "/v1.0/groups/")):
            return self._directory(path, query, select)
        if path == "/v1.0/policies/authenticationMethodsPolicy":
            return 200, scenario.methods, {}
        if path == "/v1.0/security/secureScores":
            top = int(first(query, "$top") or len(scenario.scores) or 1)
            newest = sorted(scenario.scores, key=lambda s: s["createdDateTime"], reverse=True)[:top]
            return (
                200,
                {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/secureScores", "value": newest},
                {},
            )
        segment = path.rsplit("/", 1)[-1]
        return 400, graph_error("BadRequest", f"Resource not found for the segment '{segment}'."), {}

    def _directory(self, path: str, query: dict[str, list[str]], select: str | None) -> Reply:
        directory = self.owner.scenario.directory
        parts = path.split("/")  # "", "v1.0", "users" | "groups", id, ...
        found = directory.get(parts[3])
        kind = "#microsoft.graph.user" if parts[2] == "users" else "#microsoft.graph.group"
        if found is None or found["@odata.type"] != kind:
            message = (
                f"Resource '{parts[3]}' does not exist or one of its queried reference-property objects "
                "are not present."
            )
            return 404, graph_error("Request_ResourceNotFound", message), {}
        if len(parts) == 4:
            item = public(found) or {}
            if select:
                item = {k: item[k] for k in select.split(",") if k in item}
            return 200, {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{parts[2]}/$entity", **item}, {}
        if parts[2] == "groups" and parts[4:] == ["transitiveMembers", "microsoft.graph.user"]:
            users: dict[str, dict[str, Any]] = {}
            pending, seen = list(found["members"]), set()
            while pending:  # nested groups flattened, as the transitive relationship is
                member = directory.get(pending.pop(0))
                if member is None or member["id"] in seen:
                    continue
                seen.add(member["id"])
                if member["@odata.type"] == "#microsoft.graph.group":
                    pending.extend(member["members"])
                elif member["@odata.type"] == "#microsoft.graph.user":
                    users[member["id"]] = member
            rows = [users[key] for key in sorted(users)]
            return self._graph_page(path, query, rows, select, "users")
        segment = path.rsplit("/", 1)[-1]
        return 400, graph_error("BadRequest", f"Resource not found for the segment '{segment}'."), {}

    def _graph_page(self, path: str, query: dict[str, list[str]], rows: Any, select: str | None, context: str) -> Reply:
        size = self.owner.scenario.graph_page_size
        token = first(query, "$skiptoken")
        offset = decode_skiptoken(token)
        if offset is None:
            return 400, graph_error("BadRequest", "The $skiptoken is not valid."), {}
        if token is None and self.owner.scenario.empty_first_page:
            size = 0
        window = rows[offset : offset + size]
        if select:
            fields = select.split(",")
            window = [{k: item[k] for k in fields if k in item} for item in window]
        body: dict[str, Any] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}",
            "value": window,
        }
        if offset + size < len(rows) or (size == 0 and rows):
            kept = {k: v[-1] for k, v in query.items() if k != "$skiptoken"}
            kept["$skiptoken"] = encode_skiptoken(offset + size)
            base = self.owner.scenario.next_link_base or self.owner.graph_url
            body["@odata.nextLink"] = f"{base}{path}?{urlencode(kept, quote_via=quote, safe='$,')}"
        return 200, body, {}
