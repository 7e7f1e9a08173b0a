"""Who a conditional access exclusion leaves out: the users behind excluded user, group and role ids.

Read through Graph's documented endpoints, one object or page at a time:
- a user: `GET /v1.0/users/{id}?$select=id,userPrincipalName,displayName` (User.Read.All);
- a group's members, nested groups flattened: `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user`
  (GroupMember.Read.All), and its name: `GET /v1.0/groups/{id}?$select=id,displayName`;
- a role's holders: `GET /v1.0/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '{id}'
  &$expand=principal` (RoleManagement.Read.Directory): users, and groups (expanded as above); service
  principals are not users and do not sign in interactively.
An object that no longer exists (404) leaves no one out. Any other failure ends the probe with an error
naming the permission to grant: who is excluded cannot then be known, so neither can whether MFA is
enforced for everyone. Active role assignments only: an eligible (PIM) holder is not listed until they
activate the role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from checks.probes.cloud.common import graph_items
from checks.probes.cloud.context import CloudContext, CloudError, PermissionMissing
from checks.probes.host import ProbeError

USER_FIELDS = "id,userPrincipalName,displayName"
ROLE_ASSIGNMENTS_PATH = "/v1.0/roleManagement/directory/roleAssignments"
USER_READ = "User.Read.All"
GROUP_MEMBER_READ = "GroupMember.Read.All"
ROLE_READ = "RoleManagement.Read.Directory"
T = TypeVar("T")


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str  # empty when the app may not read it
    display_name: str

    def as_fact(self) -> dict[str, str]:
        return {"id": self.id, "user_principal_name": self.user_principal_name, "display_name": self.display_name}


def _user(item: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        str(item.get("id") or ""), str(item.get("userPrincipalName") or ""), str(item.get("displayName") or "")
    )


class Directory:
    """Lookups for one probe run, each made once."""

    def __init__(self, context: CloudContext) -> None:
        self.context = context
        self._users: dict[str, DirectoryUser | None] = {}
        self._groups: dict[str, tuple[str, list[DirectoryUser]]] = {}
        self._roles: dict[str, list[DirectoryUser]] = {}

    def _read(self, what: str, permission: str, call: Callable[[], T]) -> T | None:
        """`call`'s answer; None when the object does not exist; a ProbeError naming what to grant else."""
        try:
            return call()
        except CloudError as exc:
            if exc.status == 404:
                return None
            grant = (
                f"; grant the app registration {permission} (Microsoft Graph application permission)"
                if isinstance(exc, PermissionMissing)
                else ""
            )
            raise ProbeError(f"cannot tell who {what} leaves without MFA: {exc.reason}{grant}") from exc

    def user(self, user_id: str) -> DirectoryUser | None:
        if user_id not in self._users:
            found = self._read(
                f"the excluded user {user_id}",
                USER_READ,
                lambda: self.context.graph_get(f"/v1.0/users/{user_id}", {"$select": USER_FIELDS}),
            )
            self._users[user_id] = None if found is None else _user(found)
        return self._users[user_id]

    def group(self, group_id: str) -> tuple[str, list[DirectoryUser]]:
        """(the group's name, its users, nested groups included); ("", []) for a group that is gone."""
        if group_id not in self._groups:
            what = f"the excluded group {group_id}"
            found = self._read(
                what,
                GROUP_MEMBER_READ,
                lambda: self.context.graph_get(f"/v1.0/groups/{group_id}", {"$select": "id,displayName"}),
            )
            if found is None:
                self._groups[group_id] = ("", [])
            else:
                path = f"/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user"
                members = self._read(
                    what,
                    GROUP_MEMBER_READ,
                    lambda: [_user(i) for i in graph_items(self.context, path, {"$select": USER_FIELDS})],
                )
                self._groups[group_id] = (str(found.get("displayName") or ""), members or [])
        return self._groups[group_id]

    def role(self, role_id: str) -> list[DirectoryUser]:
        """The users holding a directory role (active assignments), through groups too."""
        if role_id not in self._roles:
            query = {"$filter": f"roleDefinitionId eq '{role_id}'", "$expand": "principal"}
            assignments = self._read(
                f"the excluded role {role_id}",
                ROLE_READ,
                lambda: list(graph_items(self.context, ROLE_ASSIGNMENTS_PATH, query)),
            )
            users: list[DirectoryUser] = []
            for assignment in assignments or []:
                if str(assignment.get("roleDefinitionId") or "").lower() != role_id.lower():
                    continue
                users.extend(self._holders(assignment))
            self._roles[role_id] = users
        return self._roles[role_id]

    def _holders(self, assignment: dict[str, Any]) -> Iterator[DirectoryUser]:
        expanded = assignment.get("principal")
        principal: dict[str, Any] = expanded if isinstance(expanded, dict) else {}
        principal_id = str(assignment.get("principalId") or principal.get("id") or "")
        kind = str(principal.get("@odata.type") or "").lower()
        if kind.endswith("group"):
            yield from self.group(principal_id)[1]
        elif kind.endswith("user") and principal.get("userPrincipalName") is not None:
            yield _user(principal)
        elif kind.endswith("user") or not kind:  # a user whose name the expansion left out, or no type given
            found = self.user(principal_id)
            if found is not None:
                yield found
        # Service principals: not users, they do not sign in with MFA.
