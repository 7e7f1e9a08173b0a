"""Entra ID: the principals holding the Global Administrator role."""
