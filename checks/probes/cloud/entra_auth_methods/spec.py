"""The entra_auth_methods probe: its contract and its collector."""

from __future__ import annotations

from checks.probes.cloud.common import cloud_collector
from checks.probes.cloud.entra_auth_methods import collect
from checks.probes.registry import Field, ProbeSpec, register

SPEC = register(
    ProbeSpec(
        name="entra_auth_methods",
        description="Authentication methods enabled in the tenant's authentication methods policy, and which "
        "of them are weak (SMS, voice and email by default)",
        scope="tenant",
        permissions=("Policy.Read.All (Microsoft Graph application permission)",),
        params=(
            Field(
                "weak_methods",
                "array",
                "Method ids counted as weak (case does not matter)",
                items="string",
                required=False,
                default=["sms", "voice", "email"],
            ),
        ),
        facts=(
            Field(
                "methods",
                "array",
                "Every method configuration",
                fields=(
                    Field("id", "string", "Method id, e.g. Sms, Fido2, MicrosoftAuthenticator"),
                    Field("state", "string", "enabled or disabled"),
                ),
            ),
            Field("enabled_methods", "array", "Ids of enabled methods (lower case)", items="string"),
            Field("enabled_weak_methods", "array", "Ids of enabled weak methods (lower case)", items="string"),
        ),
        example="""\
- id: weak-methods-off
  title: SMS, voice and email sign-in methods are off
  description: Reads the authentication methods policy.
  rationale: SMS and voice codes are intercepted by SIM swapping; email codes by mailbox compromise.
  remediation: Disable the SMS, Voice call and Email OTP methods; move users to Authenticator or FIDO2.
  severity: medium
  platforms: [microsoft365]
  probe: entra_auth_methods
  expect: {fact: enabled_weak_methods, count: {eq: 0}}
""",
    )
)
cloud_collector(SPEC, "microsoft365")(collect.collect_auth_methods)
