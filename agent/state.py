"""The agent's state directory: its key, its enrolment, the collector's CA, the policy cache and the spool.

The directory is owner-only (0700) and the private key owner-only (0600): whoever reads the key can speak
for this machine. Files are replaced atomically (write a temporary file, fsync, rename), so a crash leaves
either the old or the new version, never half of one.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
KEY_MODE = 0o600


class StateError(Exception):
    """The state directory is missing, unreadable or not what the agent wrote."""


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "agent.key"

    @property
    def identity(self) -> Path:
        return self.root / "agent.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "collector-ca.pem"

    @property
    def policy_bundle(self) -> Path:
        return self.root / "policy-bundle.json"

    @property
    def spool(self) -> Path:
        return self.root / "spool.sqlite"

    @property
    def probe_cache(self) -> Path:
        """Tools' own caches kept between runs (apt's package cache, ~40 MB on Debian)."""
        return self.root / "cache"

    @property
    def delivery_lock(self) -> Path:
        return self.root / "delivery.lock"


@dataclass(frozen=True)
class Identity:
    """What enrolment leaves behind (agent.json). The token is not kept."""

    agent_id: str
    collector_url: str
    collector_public_key: str
    group: str
    enrolled_at: str
    ca_cert: str  # path of the stored CA, or "" for the system's trust store

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        return cls(
            agent_id=str(data["agent_id"]),
            collector_url=str(data["collector_url"]),
            collector_public_key=str(data["collector_public_key"]),
            group=str(data.get("group") or ""),
            enrolled_at=str(data.get("enrolled_at") or ""),
            ca_cert=str(data.get("ca_cert") or ""),
        )


def ensure_private_dir(path: Path) -> None:
    """Create the directory owner-only, or tighten it if it exists with wider permissions."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != DIR_MODE:
            os.chmod(path, DIR_MODE)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_identity(paths: StatePaths) -> Identity | None:
    """The enrolment record, or None when this machine has not enrolled."""
    try:
        raw = paths.identity.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {paths.identity}: {exc.strerror or exc}") from exc
    try:
        return Identity.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{paths.identity} is damaged ({exc}); re-enrol with rampart-agent enroll --force") from exc


def check_key_permissions(path: Path) -> None:
    """Refuse a private key that others may read: it may already have been copied."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise StateError(
            f"{path} is readable by others (mode {mode:04o}); it must be 0600. "
            "Fix it with chmod 600, and re-enrol if anyone may have copied it."
        )
