"""What the fake tenant serves and how it misbehaves: the scenario a test sets, and the requests it saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.microsoft.arm import Subscription
from tests.fakes.microsoft.certificates import Certificate
from tests.fakes.microsoft.constants import TENANT_ID
from tests.fakes.microsoft.graph import methods_policy


@dataclass
class Fault:
    """Answer requests whose path starts with `prefix` with an error, `times` times (None: always)."""

    prefix: str
    status: int
    code: str
    message: str = ""
    retry_after: str | None = None
    times: int | None = None
    delay_s: float = 0.0  # wait this long before answering (timeouts)


@dataclass
class App:
    client_id: str
    secret: str | None = None
    certificate: Certificate | None = None


@dataclass
class Scenario:
    """Everything the fake tenant serves; tests change it before (or during) a run."""

    tenant_id: str = TENANT_ID
    apps: dict[str, App] = field(default_factory=dict)
    security_defaults: bool = False
    ca_policies: list[dict[str, Any]] = field(default_factory=list)
    users: Any = field(default_factory=list)  # a list of records, or GeneratedUsers
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    directory: dict[str, dict[str, Any]] = field(default_factory=dict)  # object id -> directory_user/_group
    methods: dict[str, Any] = field(default_factory=lambda: methods_policy(["MicrosoftAuthenticator", "Fido2"]))
    scores: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    graph_page_size: int = 100
    arm_page_size: int = 2
    next_link_base: str | None = None  # serve next links on another host (the client must refuse them)
    empty_first_page: bool = False  # Graph may answer a page with no items and a next link
    token_lifetime_s: int = 3599


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    status: int
    at: float
