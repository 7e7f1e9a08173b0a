"""A local fake of Microsoft's sign-in service, Microsoft Graph and Azure Resource Manager.

It speaks the real protocol over HTTPS on 127.0.0.1, shaped as /work/shared/reference/microsoft-apis.md
describes (and as msal 1.39 sends and expects):

- `GET /{tenant}/v2.0/.well-known/openid-configuration` (msal's tenant discovery);
- `POST /{tenant}/oauth2/v2.0/token`: client credentials with a client secret, or an RS256 client
  assertion whose `x5t` header is the SHA-1 thumbprint of the registered certificate (PS256 with
  `x5t#S256` is accepted too), checked for signature, aud, iss, sub and exp; a bad secret gets 401
  `invalid_client` with AADSTS7000215;
- Graph under `/graph` and ARM under `/arm` (their own token audiences): lists as `value` plus
  `@odata.nextLink` (Graph) or `nextLink` (ARM), error bodies with `innerError` (Graph) or
  code/message/target/details (ARM), 401 for a missing or wrong-audience token;
- directory objects for what conditional access exclusions name: `GET /v1.0/users/{id}`,
  `GET /v1.0/groups/{id}`, `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user` (nested groups
  flattened) and role assignments with `$expand=principal`; an unknown id is 404 Request_ResourceNotFound;
- scenario switches: 429/503 with Retry-After on chosen paths, 403 Authorization_RequestDenied /
  Authentication_RequestFromNonPremiumTenantOrB2CTenant / AuthorizationFailed, a tenant with no
  conditional access policies, and generated tenants of any size served lazily page by page.

One module per concern: constants.py, certificates.py, graph.py and arm.py (the documents served),
scenario.py (what a test sets), wire.py, handler.py, signin.py, graph_routes.py, arm_routes.py, server.py
(the HTTPS server) and launcher.py. Run standalone (used by the large-tenant memory test and bench/, so
the fake's own memory is not counted with the client's):  python -m tests.fakes.microsoft --users 100000
"""

from tests.fakes.microsoft.arm import (
    DEFAULT_NSG_RULES,
    Subscription,
    arm_id,
    nsg,
    nsg_rule,
    pricing,
    storage_account,
    vault,
)
from tests.fakes.microsoft.certificates import Certificate, make_certificate
from tests.fakes.microsoft.constants import (
    ASSERTION_TYPE,
    CLIENT_ID,
    CLIENT_SECRET,
    GLOBAL_ADMIN_ROLE,
    LICENCE_CODE,
    TENANT_ID,
)
from tests.fakes.microsoft.graph import (
    GeneratedUsers,
    ca_policy,
    directory_group,
    directory_user,
    methods_policy,
    role_assignment,
    secure_scores,
    user,
)
from tests.fakes.microsoft.launcher import SpawnedFake, main
from tests.fakes.microsoft.scenario import App, Fault, Recorded, Scenario
from tests.fakes.microsoft.server import FakeMicrosoft

__all__ = [
    "ASSERTION_TYPE",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEFAULT_NSG_RULES",
    "GLOBAL_ADMIN_ROLE",
    "LICENCE_CODE",
    "TENANT_ID",
    "App",
    "Certificate",
    "FakeMicrosoft",
    "Fault",
    "GeneratedUsers",
    "Recorded",
    "Scenario",
    "SpawnedFake",
    "Subscription",
    "arm_id",
    "ca_policy",
    "directory_group",
    "directory_user",
    "main",
    "make_certificate",
    "methods_policy",
    "nsg",
    "nsg_rule",
    "pricing",
    "role_assignment",
    "secure_scores",
    "storage_account",
    "user",
    "vault",
]
