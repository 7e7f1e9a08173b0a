"""What the API's handlers share within one collector process."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from anyio import to_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection, Engine

from collector.api.metrics import Metrics
from collector.api.ratelimit import RateLimiter
from collector.config import CollectorConfig
from collector.storage import fast_ingest
from collector.storage.assignments import AssignmentCache
from collector.storage.engine import read_tx, run_write
from collector.storage.fast_ingest import FastReportStore
from collector.storage.registry import AgentAuth
from collector.storage.waivers import WaiverCache

T = TypeVar("T")


class AgentCache:
    """Agents seen recently, for the check made before a report's body is read: their public key (which
    never changes: the agent id is derived from it) and whether they were revoked when last read.

    Only used where the same check is made again, authoritatively, inside the storing transaction
    (reports), so a revocation is never missed: it only costs the revoked agent one body upload, after
    which the agent is forgotten here. An hour, so that a fleet reporting every few minutes costs no read
    per report.
    """

    def __init__(self, ttl_s: float = 3600.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, AgentAuth]] = {}
        self._lock = threading.Lock()

    def get(self, agent_id: str) -> AgentAuth | None:
        entry = self._entries.get(agent_id)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, auth: AgentAuth) -> None:
        with self._lock:
            if len(self._entries) > 200_000:
                self._entries.clear()
            self._entries[auth.agent_id] = (time.monotonic(), auth)

    def forget(self, agent_id: str) -> None:
        with self._lock:
            self._entries.pop(agent_id, None)


@dataclass
class AppState:
    config: CollectorConfig
    engine: Engine
    signing_key: Ed25519PrivateKey
    metrics: Metrics
    holder: str  # this process, as named in job runs
    waivers: WaiverCache = field(default_factory=WaiverCache)
    agents: AgentCache = field(default_factory=AgentCache)
    assignments: AssignmentCache = field(init=False)
    ingest_limiter: anyio.CapacityLimiter | None = None
    ingest_pending: int = 0
    ingest_pending_by_agent: dict[str, int] = field(default_factory=dict)
    # Rate limits per client address (None: turned off in the config with 0).
    enroll_attempts: RateLimiter | None = field(init=False)
    auth_failures: RateLimiter | None = field(init=False)
    _fast_store: FastReportStore | None = None
    _fast_checked: bool = False
    _fast_lock: threading.Lock = field(default_factory=threading.Lock)
    _store_threads: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        grace = dt.timedelta(hours=self.config.policy_change_grace_hours)
        self.assignments = AssignmentCache(self.config.default_group, grace)
        enroll, failures = self.config.enroll_attempts_per_minute, self.config.api_auth_failures_per_minute
        self.enroll_attempts = RateLimiter(enroll, 60.0) if enroll > 0 else None
        self.auth_failures = RateLimiter(failures, 60.0) if failures > 0 else None

    async def fast_store(self) -> FastReportStore | None:
        """The one-round-trip report store, where the database has it (PostgreSQL); looked for once."""
        if not self._fast_checked:
            await to_thread.run_sync(self._find_fast_store)
        return self._fast_store

    def _find_fast_store(self) -> None:
        with self._fast_lock:
            if self._fast_checked:
                return
            if fast_ingest.available(self.engine):
                url = self.engine.url.render_as_string(hide_password=False)
                self._fast_store = FastReportStore(
                    url, self.config.max_concurrent_ingest, self.waivers, self.assignments
                )
            self._fast_checked = True

    async def in_store_thread(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` in one of max_concurrent_ingest threads kept for storing reports: at most that many
        at once, as `limiter()` bounds the other path. A plain executor, not anyio's to_thread: the same
        hand-off for 10-30 us less CPU per call here (anyio looks up its limiter and thread pool each time).
        Cancelled meanwhile, it still waits for the work to end (as to_thread.run_sync does)."""
        if self._store_threads is None:
            self._store_threads = ThreadPoolExecutor(self.config.max_concurrent_ingest, thread_name_prefix="store")
        future = asyncio.get_running_loop().run_in_executor(self._store_threads, work, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def dispose(self) -> None:
        if self._store_threads is not None:
            self._store_threads.shutdown(wait=True)
        if self._fast_store is not None:
            self._fast_store.dispose()
        self.engine.dispose()

    def limiter(self) -> anyio.CapacityLimiter:
        if self.ingest_limiter is None:
            self.ingest_limiter = anyio.CapacityLimiter(self.config.max_concurrent_ingest)
        return self.ingest_limiter

    async def read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with read_tx(self.engine) as connection:
                return work(connection)

        return await to_thread.run_sync(run)

    async def write(self, work: Callable[[Connection], T], limiter: anyio.CapacityLimiter | None = None) -> T:
        return await to_thread.run_sync(run_write, self.engine, work, limiter=limiter)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
