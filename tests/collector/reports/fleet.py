"""A fleet driven through the collector's real store with a clock the test controls.

Agents enrol through the registry, send reports signed with their own Ed25519 keys (the signature kept
with the report, as the API keeps it, so an evidence pack can verify it again), cloud runs are stored as
`cloud run` stores them, waivers go through request and approval: every write is the collector's own
code, at the `now` the test names. Results are judged against the shipped policies, stored and assigned
as `init` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from checks import wire
from checks.policy.loader import load_policy_file
from checks.policy.model import Policy
from checks.results import Result, Severity, Status, Subject, SubjectKind
from collector.cloud.run import CloudRun
from collector.cloud.store import store_cloud_run
from collector.storage import policies as policy_store
from collector.storage import registry, waivers
from collector.storage.assignments import AssignmentCache
from collector.storage.engine import run_write
from collector.storage.ingest import SignedEvidence, parse_report, store_agent_report
from collector.storage.waivers import WaiverCache
from policies import shipped_path

REPORTS_PATH = "/api/v1/reports"


@dataclass
class Host:
    name: str
    group: str
    key: Any
    agent_id: str
    report_ids: list[str] = field(default_factory=list)


class Fleet:
    def __init__(self, engine: Engine, start: dt.datetime) -> None:
        self.engine = engine
        self.policies: dict[str, Policy] = {
            name: load_policy_file(shipped_path(f"{name}.yaml")) for name in ("baseline", "microsoft365", "azure")
        }
        self.cache = WaiverCache()
        self.assignments = AssignmentCache("default", dt.timedelta(hours=24))

        def store_policies(connection: Any) -> None:
            for policy in self.policies.values():
                policy_store.add(connection, policy, by="system:init", now=start)
            policy_store.assign(connection, "default", "baseline", by="system:init", now=start)

        run_write(engine, store_policies)

    def enrol(self, name: str, now: dt.datetime, group: str = "default") -> Host:
        key = wire.generate_key()
        agent_id = wire.agent_id_for(key)

        def work(connection: Any) -> None:
            token, _ = registry.create_token(
                connection, group=group, max_uses=1, valid_for=dt.timedelta(hours=1), created_by="test", now=now
            )
            registry.enroll(
                connection,
                agent_id=agent_id,
                public_key=wire.public_key_text(key),
                token=token,
                host={"hostname": name, "os": "linux", "os_version": "12", "agent_version": "1.0.0"},
                now=now,
            )

        run_write(self.engine, work)
        return Host(name, group, key, agent_id)

    def result(
        self, policy_id: str, check_id: str, status: str, now: dt.datetime, observed: dict[str, Any] | None = None
    ) -> Result:
        policy = self.policies[policy_id]
        check = policy.check(check_id)
        assert check is not None, f"{policy_id} has no check {check_id}"
        return Result(
            check_id=check_id,
            status=Status(status),
            severity=Severity(check.severity),
            title=check.title,
            policy_id=policy.id,
            policy_version=policy.version,
            policy_hash=policy.sha256,
            observed=observed if observed is not None else {"value": f"{check_id} {status}"},
            expectation={"fact": "value"},
            reason="" if status == "pass" else f"{check_id} is {status}",
            frameworks={k: list(v) for k, v in check.frameworks.items()},
            evaluated_at=now.isoformat() + "Z",
        )

    def report(self, host: Host, statuses: dict[str, str], now: dt.datetime, **observed: dict[str, Any]) -> str:
        """One signed report of `host` with the given baseline check statuses, stored at `now`."""
        results = [
            self.result("baseline", c, s, now, observed.get(c.replace("-", "_"))).to_dict() for c, s in statuses.items()
        ]
        report_id = str(uuid.uuid4())
        body = json.dumps(
            wire.make_report(
                agent_id=host.agent_id,
                results=results,
                report_id=report_id,
                created_at=now.isoformat() + "Z",
                host={"hostname": host.name},
            )
        ).encode()
        stamp = int(now.replace(tzinfo=dt.UTC).timestamp())
        headers = wire.sign_request(host.key, host.agent_id, "POST", REPORTS_PATH, body, stamp)
        evidence = SignedEvidence(
            "POST",
            REPORTS_PATH,
            stamp,
            hashlib.sha256(body).hexdigest(),
            headers[wire.HEADER_SIGNATURE],
        )
        parsed = parse_report(json.loads(body), host.agent_id)
        run_write(
            self.engine,
            lambda c: store_agent_report(
                c, parsed, body, evidence, now=now, waivers=self.cache.current, assignments=self.assignments.current
            ),
        )
        host.report_ids.append(report_id)
        return report_id

    def cloud(self, tenant: str, results: list[Result], now: dt.datetime) -> None:
        """A cloud run of tenant `tenant` (results carry their own subjects), stored at `now`."""
        subject = Subject(SubjectKind.TENANT, tenant, f"Tenant {tenant}")
        run = CloudRun(tenant=subject, results=results)
        run_write(self.engine, lambda c: store_cloud_run(c, run, now=now, waivers=self.cache.current))

    def tenant_result(
        self, tenant: str, check_id: str, status: str, now: dt.datetime, observed: dict[str, Any] | None = None
    ) -> Result:
        result = self.result("microsoft365", check_id, status, now, observed)
        result.subject = Subject(SubjectKind.TENANT, tenant, f"Tenant {tenant}")
        return result

    def resource_result(self, resource_id: str, check_id: str, status: str, now: dt.datetime) -> Result:
        result = self.result("azure", check_id, status, now)
        result.subject = Subject(SubjectKind.CLOUD_RESOURCE, resource_id, resource_id.rsplit("/", 1)[-1])
        return result

    def waive(
        self, check_id: str, scope: dict[str, Any], expires: dt.date, now: dt.datetime, justification: str = "Agreed"
    ) -> str:
        def work(connection: Any) -> str:
            draft = waivers.request(
                connection,
                check_id=check_id,
                policy_id="baseline",
                scope=scope,
                justification=justification,
                expires=expires,
                requested_by="it.manager",
                now=now,
                ticket="CHG-1001",
            )
            waivers.approve(connection, draft["id"], approver="ciso", now=now)
            return str(draft["id"])

        return str(run_write(self.engine, work))

    def revoke(self, host: Host, now: dt.datetime) -> None:
        run_write(self.engine, lambda c: registry.revoke_agent(c, host.agent_id, by="admin", now=now))


def shipped_result(
    check_id: str, status: str, *, policy_id: str = "baseline", observed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A result of a shipped policy's check as an agent sends it (for tests that report over HTTPS)."""
    policy = load_policy_file(shipped_path(f"{policy_id}.yaml"))
    check = policy.check(check_id)
    assert check is not None
    return Result(
        check_id=check_id,
        status=Status(status),
        severity=Severity(check.severity),
        title=check.title,
        policy_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.sha256,
        observed=observed if observed is not None else {"value": f"{check_id} {status}"},
        expectation={"fact": "value"},
        reason="" if status == "pass" else f"{check_id} is {status}",
        frameworks={k: list(v) for k, v in check.frameworks.items()},
    ).to_dict()
