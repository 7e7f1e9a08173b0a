"""Entra ID: whether legacy authentication is blocked (security defaults or conditional access)."""
