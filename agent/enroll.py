"""Enrolment: a new Ed25519 key, a one-time token, and the collector's public key pinned in return.

The key is generated here and never leaves the state directory (0600 in a 0700 directory). The request
is signed by the new key, proving possession; the agent id is derived from it, so a cloned machine that
re-enrols gets a new identity. The token is sent once and kept nowhere. Enrolment counts only when
agent.json is written, last: a failure leaves no half-enrolled state behind.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.state import Identity, StatePaths, ensure_private_dir, read_identity, write_atomic, write_json
from agent.transport import CollectorError, Rejected, RetryPolicy, Transport
from checks import __version__, wire
from checks.backoff import Backoff

log = logging.getLogger("rampart.agent.enroll")

ENROLL_PATH = "/api/v1/enroll"


class EnrolError(Exception):
    """Enrolment did not happen; `usage` marks bad input (exit 2) rather than a failure (exit 1)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Enrolled:
    identity: Identity
    replaced: str | None  # the previous agent id, when --force replaced an enrolment


def _check_ca(path: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError as exc:
        raise EnrolError(f"--ca-cert {path}: no such file", usage=True) from exc
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise EnrolError(f"--ca-cert {path}: not a PEM CA certificate ({exc})", usage=True) from exc


def enroll(
    config: AgentConfig,
    *,
    collector_url: str,
    token: str,
    ca_cert: str | None,
    host: dict[str, Any],
    force: bool = False,
) -> Enrolled:
    paths = StatePaths(Path(config.state_dir))
    url = collector_url.rstrip("/")
    if not url.startswith("https://"):
        raise EnrolError(f"--collector {collector_url}: the collector is reached over https://", usage=True)
    if not token.strip():
        raise EnrolError("the enrolment token is empty", usage=True)
    previous = read_identity(paths)
    if previous is not None and not force:
        raise EnrolError(
            f"already enrolled as {previous.agent_id} with {previous.collector_url}; "
            "use --force to enrol again (this machine gets a new identity)",
            usage=True,
        )
    if ca_cert:
        _check_ca(ca_cert)
    ensure_private_dir(paths.root)

    verify: str | bool = True
    stored_ca = ""
    ca_new = paths.root / ".collector-ca.pem.new"
    if ca_cert:
        write_atomic(ca_new, Path(ca_cert).read_bytes(), mode=0o644)
        verify = str(ca_new)
    elif config.ca_cert:
        verify = config.ca_cert
    elif previous is not None and previous.ca_cert and Path(previous.ca_cert).is_file():
        verify = stored_ca = previous.ca_cert  # re-enrolling with the CA pinned last time

    key = wire.generate_key()
    agent_id = wire.agent_id_for(key)
    transport = Transport(
        url,
        verify=verify,
        agent_id=agent_id,
        key=key,
        connect_timeout_s=config.seconds("connect_timeout"),
        read_timeout_s=config.seconds("read_timeout"),
        user_agent=f"rampart-agent/{__version__}",
    )
    retry = RetryPolicy(attempts=3, backoff=Backoff(1.0, 10.0), retry_after_max_s=30.0)
    payload = {"token": token.strip(), "public_key": wire.public_key_text(key), "host": host}
    try:
        answer = transport.call("POST", ENROLL_PATH, payload=payload, retry=retry, deadline=time.monotonic() + 60)
    except Rejected as exc:
        ca_new.unlink(missing_ok=True)
        if exc.code == "bad_token":
            raise EnrolError(f"the collector refused the enrolment token: {exc.message}") from exc
        raise EnrolError(exc.message) from exc
    except CollectorError as exc:
        ca_new.unlink(missing_ok=True)
        raise EnrolError(f"enrolment failed: {exc.message}") from exc
    finally:
        transport.close()

    body = answer.body if isinstance(answer.body, dict) else {}
    if body.get("agent_id") != agent_id:
        ca_new.unlink(missing_ok=True)
        raise EnrolError(
            f"the collector answered with agent id {body.get('agent_id')!r}, not {agent_id} derived from our key"
        )
    try:
        wire.load_public_key(str(body.get("collector_public_key", "")))
    except wire.WireError as exc:
        ca_new.unlink(missing_ok=True)
        raise EnrolError(f"the collector's public key is unusable: {exc.message}") from exc

    # Committed in an order that never leaves a key without its record or a record without its key.
    if ca_cert:
        os.replace(ca_new, paths.ca_cert)
        stored_ca = str(paths.ca_cert)
    if previous is not None:
        _retire(paths, previous.agent_id)
    write_atomic(paths.key, wire.private_key_pem(key), mode=0o600)
    identity = Identity(
        agent_id=agent_id,
        collector_url=url,
        collector_public_key=str(body["collector_public_key"]),
        group=str(body.get("group") or ""),
        enrolled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ca_cert=stored_ca,
    )
    write_json(paths.identity, identity.to_dict(), mode=0o600)
    log.info("enrolled as %s with %s", agent_id, url)
    return Enrolled(identity, previous.agent_id if previous else None)


def _retire(paths: StatePaths, old_agent_id: str) -> None:
    """A new identity starts clean: the old policy no longer applies, and the old spool (results of the
    old identity) is kept aside, not sent under the new one."""
    paths.policy_bundle.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        old = Path(str(paths.spool) + suffix)
        if old.exists():
            os.replace(old, paths.root / f"spool-{old_agent_id}.sqlite{suffix}")
