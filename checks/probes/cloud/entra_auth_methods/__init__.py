"""Entra ID: the authentication methods the tenant enables, and which of them are weak."""
