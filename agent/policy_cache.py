"""The policy bundle the collector assigns to this agent, verified and kept.

A bundle is a document signed by the collector's key (pinned at enrolment). It is verified when it
arrives and again whenever it is read from disk, so neither the network nor a local edit can change what
the agent checks. A bundle that fails verification or validation is refused with the reason, and the last
good one stays in force; an older bundle than the one held is refused too (no rollback by replay).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from agent.state import StatePaths, write_json
from checks import wire
from checks.policy.loader import PolicyError, load_policy_document
from checks.policy.model import Policy, Waiver
from checks.policy.waiverfile import check_waivers_against, load_waiver_document


class PolicyRefused(Exception):
    """A bundle that must not be used; the message says why."""


@dataclass
class Bundle:
    etag: str
    group: str
    issued_at: str
    policies: list[Policy]
    waivers: list[Waiver]
    document: dict[str, Any]

    @property
    def groups(self) -> tuple[str, ...]:
        return (self.group,) if self.group else ()

    def describe(self) -> str:
        names = ", ".join(f"{p.id} {p.version}" for p in self.policies) or "no policies"
        return f"{names} (etag {self.etag})"


def _issued(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def verify_bundle(document: Any, collector_public_key: str, agent_id: str) -> Bundle:
    """The bundle's content, once its signature, addressee and every policy and waiver check out."""
    try:
        payload = wire.verify_document(wire.load_public_key(collector_public_key), document)
    except wire.WireError as exc:
        raise PolicyRefused(f"policy bundle refused: {exc.message}") from exc
    if payload.get("agent_id") != agent_id:
        raise PolicyRefused(f"policy bundle refused: it was issued to {payload.get('agent_id')!r}, not {agent_id}")
    etag = str(payload.get("etag") or "")
    raw_policies = payload.get("policies")
    raw_waivers = payload.get("waivers") or []
    if not isinstance(raw_policies, list) or not isinstance(raw_waivers, list):
        raise PolicyRefused("policy bundle refused: `policies` and `waivers` must be lists")
    policies: list[Policy] = []
    try:
        for index, raw in enumerate(raw_policies):
            policies.append(load_policy_document(raw, source=f"bundle {etag} policies[{index}]"))
        waiver_items = [
            {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item for item in raw_waivers
        ]
        waivers = load_waiver_document({"waivers": waiver_items}, source=f"bundle {etag} waivers")
    except PolicyError as exc:
        problems = "; ".join(str(issue) for issue in exc.issues[:5])
        raise PolicyRefused(f"policy bundle refused: invalid content: {problems}") from exc
    ids = [p.id for p in policies]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise PolicyRefused(f"policy bundle refused: policy {duplicated[0]!r} appears twice")
    issues = check_waivers_against(waivers, policies) if policies else []
    if issues:
        raise PolicyRefused(f"policy bundle refused: {issues[0]}")
    return Bundle(
        etag=etag,
        group=str(payload.get("group") or ""),
        issued_at=str(payload.get("issued_at") or ""),
        policies=policies,
        waivers=waivers,
        document=document,
    )


class PolicyCache:
    def __init__(self, paths: StatePaths, collector_public_key: str, agent_id: str) -> None:
        self.paths = paths
        self.collector_public_key = collector_public_key
        self.agent_id = agent_id

    def load(self) -> Bundle | None:
        """The last good bundle, verified again; None when there is none yet."""
        try:
            document = json.loads(self.paths.policy_bundle.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise PolicyRefused(f"cached policy bundle {self.paths.policy_bundle} is unreadable: {exc}") from exc
        try:
            return verify_bundle(document, self.collector_public_key, self.agent_id)
        except PolicyRefused as exc:
            raise PolicyRefused(f"cached policy bundle {self.paths.policy_bundle}: {exc}") from exc

    def etag(self) -> str | None:
        try:
            document = json.loads(self.paths.policy_bundle.read_text(encoding="utf-8"))
            return str(document["payload"]["etag"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def accept(self, document: Any, current: Bundle | None) -> Bundle:
        """Verify a bundle from the collector and make it the one in force; PolicyRefused leaves the old one."""
        bundle = verify_bundle(document, self.collector_public_key, self.agent_id)
        if current is not None:
            new, old = _issued(bundle.issued_at), _issued(current.issued_at)
            if new is not None and old is not None and new < old:
                raise PolicyRefused(
                    f"policy bundle refused: issued {bundle.issued_at}, older than the one in force "
                    f"({current.issued_at})"
                )
        write_json(self.paths.policy_bundle, document)
        return bundle
