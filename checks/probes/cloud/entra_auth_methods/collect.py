"""Reading the tenant's authentication methods policy from Graph."""

from __future__ import annotations

from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.entra_auth_methods.parse import enabled_methods
from checks.probes.host import ProbeError
from checks.probes.registry import Facts, Params

METHODS_POLICY_PATH = "/v1.0/policies/authenticationMethodsPolicy"


def collect_auth_methods(context: CloudContext, params: Params) -> Facts:
    document = context.graph_get(METHODS_POLICY_PATH)
    if not isinstance(document.get("authenticationMethodConfigurations"), list):
        raise ProbeError(f"Graph {METHODS_POLICY_PATH}: no authenticationMethodConfigurations in the reply")
    return enabled_methods(document, params["weak_methods"])
