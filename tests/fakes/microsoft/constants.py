"""Identifiers of the fake tenant and its app registration, shared by every part of the fake."""

TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT_SECRET = "fake-secret-Qx7~never-log-me"
GLOBAL_ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
