"""Entra ID: whether every privileged directory role must use MFA."""
