"""Probes: typed observations of a machine or a tenant, one spec and a collector per platform."""
