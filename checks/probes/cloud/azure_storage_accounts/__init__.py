"""Azure storage accounts: HTTPS only, anonymous blob access, minimum TLS, shared keys, public network access."""
