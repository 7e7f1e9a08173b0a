"""The collector's HTTP API: the agent protocol (docs/protocol.md) and the compliance API under /api/v1."""
