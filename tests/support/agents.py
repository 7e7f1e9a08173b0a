"""A simulated agent that speaks docs/protocol.md through checks.wire, for tests and benchmarks.

It is deliberately small: it signs and sends exactly what the protocol says, and lets a test change any
part (timestamp, body, headers) to show the collector refuses it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checks import wire
from checks.results import Result, Severity, Status
from tests.support.policies import FLEET_POLICY, FLEET_POLICY_ID

POLICY_HASH = FLEET_POLICY.sha256  # the hash results are judged against by default (the stored test policy)


def make_result(
    check_id: str,
    status: str = "pass",
    *,
    policy_id: str = FLEET_POLICY_ID,
    policy_hash: str = FLEET_POLICY.sha256,
    policy_version: str = FLEET_POLICY.version,
    severity: str | None = None,
    title: str | None = None,
    observed: dict[str, Any] | None = None,
    evaluated_at: str = "",
    frameworks: dict[str, list[str]] | None = None,
    waived_status: str | None = None,
    waiver_id: str | None = None,
) -> dict[str, Any]:
    """A result as an agent reports it; by default judged against FLEET_POLICY, and saying of its check
    what that policy says (`severity`, `title`, `frameworks` override what the result claims)."""
    check = FLEET_POLICY.check(check_id) if policy_id == FLEET_POLICY_ID else None
    result = Result(
        check_id=check_id,
        status=Status(status),
        severity=Severity(severity or (check.severity.value if check else "medium")),
        title=title if title is not None else (check.title if check else f"Check {check_id}"),
        policy_id=policy_id,
        policy_version=policy_version,
        policy_hash=policy_hash,
        observed=observed if observed is not None else {"value": check_id, "ok": status == "pass"},
        expectation={"fact": "ok", "eq": True},
        reason="" if status == "pass" else f"{check_id}: ok is false",
        waived_status=Status(waived_status) if waived_status else None,
        waiver_id=waiver_id,
        frameworks=frameworks if frameworks is not None else (check.frameworks if check else {}),
        evaluated_at=evaluated_at,
    )
    return result.to_dict()


def make_results(count: int, fail_every: int = 5, **kwargs: Any) -> list[dict[str, Any]]:
    """`count` results for checks c00..; every `fail_every`-th fails."""
    return [
        make_result(f"c{i:02d}", "fail" if fail_every and i % fail_every == 0 else "pass", **kwargs)
        for i in range(count)
    ]


class SimAgent:
    def __init__(self, base_url: str, ca_file: str | None, key: Ed25519PrivateKey | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.verify: str | bool = ca_file or False
        self.key = key or wire.generate_key()
        self.agent_id = wire.agent_id_for(self.key)
        self.session = requests.Session()
        self.session.trust_env = False
        self.hostname = f"host-{self.agent_id[3:11]}"
        self._made: dict[str, str] = {}  # report id -> created_at

    def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        timestamp: int | None = None,
        extra_headers: dict[str, str] | None = None,
        sign_body: bytes | None = None,
    ) -> requests.Response:
        """Send a signed request; `sign_body` signs other bytes than those sent (tampering)."""
        headers = wire.sign_request(
            self.key, self.agent_id, method, path, body if sign_body is None else sign_body, timestamp
        )
        headers["Content-Type"] = "application/json"
        headers.update(extra_headers or {})
        return self.session.request(
            method, self.base_url + path, data=body, headers=headers, verify=self.verify, timeout=30
        )

    def enroll(self, token: str, host: dict[str, Any] | None = None) -> requests.Response:
        body = json.dumps(
            {
                "token": token,
                "public_key": wire.public_key_text(self.key),
                "host": host
                or {"hostname": self.hostname, "os": "linux", "os_version": "12", "agent_version": "0.1.0"},
            }
        ).encode()
        return self.signed("POST", "/api/v1/enroll", body)

    def checkin(self, host: dict[str, Any] | None = None) -> requests.Response:
        body = json.dumps({"host": host or {"hostname": self.hostname, "os": "linux"}}).encode()
        return self.signed("POST", "/api/v1/checkin", body)

    def policy(self, etag: str | None = None) -> requests.Response:
        return self.signed("GET", "/api/v1/policy", extra_headers={"If-None-Match": f'"{etag}"'} if etag else None)

    def report_body(self, results: list[dict[str, Any]], report_id: str | None = None, **kwargs: Any) -> bytes:
        report = wire.make_report(
            agent_id=self.agent_id,
            results=results,
            report_id=report_id or str(uuid.uuid4()),
            host={"hostname": self.hostname},
            **kwargs,
        )
        # A report sent again under its id was made when it was first sent, as the agent's spool keeps it
        # (unless the test says when).
        if "created_at" not in kwargs:
            report["created_at"] = self._made.get(report["report_id"], report["created_at"])
        self._made[report["report_id"]] = report["created_at"]
        return json.dumps(report).encode()

    def report(self, results: list[dict[str, Any]], report_id: str | None = None, **kwargs: Any) -> requests.Response:
        return self.signed("POST", "/api/v1/reports", self.report_body(results, report_id, **kwargs))
