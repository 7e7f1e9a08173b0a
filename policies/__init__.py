"""The policies Rampart ships, and their framework mappings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_path(name: str) -> Path:
    """The path of a shipped policy file, e.g. `baseline.yaml`."""
    return Path(str(resources.files(__package__).joinpath(name)))


def shipped_policies() -> list[Path]:
    return sorted(p for p in Path(str(resources.files(__package__))).glob("*.yaml"))
