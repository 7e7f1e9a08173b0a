"""Helpers shared by test suites (and benchmarks): real collectors, simulated agents, databases."""
