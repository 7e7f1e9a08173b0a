"""Rampart's shared core: probes, the policy model, loader and evaluator, results and the wire format.

This package imports neither `agent` nor `collector`, and keeps its own imports light: the agent runs it.
"""

__version__ = "0.1.0"
