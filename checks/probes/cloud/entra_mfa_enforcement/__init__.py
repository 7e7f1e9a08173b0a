"""Entra ID: whether MFA is enforced for all users (security defaults or conditional access)."""
