"""Cloud probes: Microsoft 365 / Entra ID tenant settings (platform `microsoft365`) and Azure resources
(platform `azure`).

One package per probe, named after it (`entra_mfa_coverage/`: `spec.py`, `collect.py`, `parse.py`); what
several share stays here: `context.py` (what a probe may ask of a tenant), `common.py` (collectors that
name what to grant, the subscription walk), `conditional_access.py` (the evaluator of the three
conditional access probes) and `directory.py` (who an exclusion leaves out). Collectors read through a
`CloudContext`, so nothing here imports msal, requests or the collector: the signed-in implementation
lives in `collector/cloud/`.
"""
