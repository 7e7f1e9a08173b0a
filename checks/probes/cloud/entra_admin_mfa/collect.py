"""Must every privileged role use MFA: the policies requiring MFA, judged role by role."""

from __future__ import annotations

from checks.probes.cloud.conditional_access import mfa_gaps, read_policies, sort_policies
from checks.probes.cloud.context import CloudContext
from checks.probes.cloud.entra_admin_mfa.parse import role_coverage
from checks.probes.registry import Facts, Params


def collect_admin_mfa(context: CloudContext, params: Params) -> Facts:
    tenant = read_policies(context)
    counting, not_counted = sort_policies(tenant, lambda p: mfa_gaps(p, all_users=False))
    return role_coverage(tenant, counting, not_counted, [str(r) for r in params["roles"]])
