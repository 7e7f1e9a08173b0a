"""Entra ID: the share of member users who are MFA capable, from the registration report."""
