"""Where each Microsoft cloud signs in and serves Graph and Resource Manager."""

from __future__ import annotations

from dataclasses import dataclass

from collector.cloud.config import CloudConfig

# cloud: (login, Graph, Resource Manager), from Microsoft's national-cloud endpoint tables.
CLOUD_ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "public": ("https://login.microsoftonline.com", "https://graph.microsoft.com", "https://management.azure.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us", "https://management.usgovcloudapi.net"),
    "usgov_dod": (
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us",
        "https://management.usgovcloudapi.net",
    ),
    "china": (
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
        "https://management.chinacloudapi.cn",
    ),
}
PUBLIC_LOGIN = CLOUD_ENDPOINTS["public"][0]


@dataclass(frozen=True)
class Endpoints:
    authority: str  # login host + tenant, e.g. https://login.microsoftonline.com/<tenant>
    graph: str  # root that Graph paths (/v1.0/...) are appended to
    arm: str  # root that ARM paths (/subscriptions/...) are appended to

    @property
    def graph_scope(self) -> str:
        return f"{self.graph}/.default"

    @property
    def arm_scope(self) -> str:
        return f"{self.arm}/.default"

    @property
    def instance_discovery(self) -> bool | None:
        """msal's instance discovery asks login.microsoftonline.com about the authority: only useful there."""
        return None if self.authority.startswith(PUBLIC_LOGIN + "/") else False


def resolve(config: CloudConfig) -> Endpoints:
    login, graph, arm = CLOUD_ENDPOINTS[config.cloud]
    login = (config.authority_url or login).rstrip("/")
    return Endpoints(
        authority=f"{login}/{config.tenant_id}",
        graph=(config.graph_url or graph).rstrip("/"),
        arm=(config.arm_url or arm).rstrip("/"),
    )
