"""Cloud probes: Microsoft 365 / Entra ID tenant settings (platform `microsoft365`) and Azure resources
(platform `azure`).

Each module holds probe specs and their pure decision logic. Collectors read through a `CloudContext`
(see `context.py`), so nothing here imports msal, requests or the collector: the signed-in implementation
lives in `collector/cloud/`.
"""
