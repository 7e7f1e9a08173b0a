"""MFA coverage from the authentication-methods registration report, counted while the pages stream.

One request per page of `userRegistrationDetails` (never one per user: per-user method lookups stall on
large tenants). Counts are exact however large the tenant; the users listed by name as evidence are
capped, so memory stays bounded: only `evidence_limit` entries (at most twice that while sorting) are
held at any time, never the tenant.
"""

from __future__ import annotations

from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.entra_mfa_coverage.parse import Coverage
from checks.probes.registry import Facts, Params

REPORT_PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
SELECT = "id,userPrincipalName,userDisplayName,userType,isAdmin,isMfaCapable,isMfaRegistered,methodsRegistered"


def collect_mfa_coverage(context: CloudContext, params: Params) -> Facts:
    coverage = Coverage(evidence_limit=int(params["evidence_limit"]))
    for page in context.graph_pages(REPORT_PATH, {"$select": SELECT}):
        coverage.pages += 1
        for record in page:
            coverage.add(record)
    return coverage.facts()
