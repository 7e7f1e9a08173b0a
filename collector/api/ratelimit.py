"""Rate limits per client address, for attempts an attacker would repeat: enrolment, bad API tokens,
failed sign-ins.

    attempts = RateLimiter(limit=10, per_s=60)          # 10 a minute per key, in bursts of up to 10
    key = client_key(request.client.host if request.client else "")
    wait = attempts.spend(key)                           # counts one attempt, if there is room for it
    if wait:
        raise ApiError(429, "rate_limited", ..., headers={"Retry-After": retry_after(wait)})

For limits on failures only (a good token must not be turned away for its neighbours' mistakes, until
they are too many): `wait = failures.waiting(key)` before the check (0.0 when the key may try),
`failures.spend(key)` after a failure.

Each key has a bucket of `limit` attempts that refills continuously over `per_s` seconds (a token
bucket): a burst of `limit`, then one every `per_s / limit` seconds.

Per process, not shared. Each collector process (each `workers` process, each replica behind a load
balancer) keeps its own buckets, in memory: the limiter guards the database from floods, so it must not
cost a database write per attempt, and it keeps working when the database is slow or gone. An address
spread over P processes by the load balancer gets up to P times the limit; where that matters, set the
limit lower or limit at the load balancer too. Buckets are lost on restart.

Keys are client addresses as the server sees them: the connection's peer, or, from a proxy named in
`collector.trusted_proxies`, the address the proxy put in X-Forwarded-For (uvicorn's proxy headers,
configured in collector/api/server.py); X-Forwarded-For from anyone else is ignored. `client_key` puts an
IPv6 address under its /64, which one host usually holds whole. Memory is bounded: at most `max_keys`
buckets; when full, buckets that have refilled are dropped, then the least recently used (an
attacker with more addresses than that gets fresh buckets: memory is the bound that wins).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


def client_key(address: str) -> str:
    """The key of a client address: an IPv4 address as it is, an IPv6 address as its /64 network."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def retry_after(wait_s: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


class RateLimiter:
    """At most `limit` attempts per `per_s` seconds for each key (thread-safe)."""

    def __init__(
        self, limit: int, per_s: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or per_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per_s > 0")
        self.limit = limit
        self.per_s = per_s
        self.max_keys = max_keys
        self._clock = clock
        self._refill_per_s = limit / per_s
        # key -> (tokens, when they were counted), least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.limit)
        tokens, since = bucket
        return min(float(self.limit), tokens + (now - since) * self._refill_per_s)

    def waiting(self, key: str) -> float:
        """Seconds before `key` may make an attempt; 0.0 when it may now. Counts nothing."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self._refill_per_s

    def spend(self, key: str) -> float:
        """Count one attempt of `key` and return 0.0; or, when it has none left, count nothing and return
        the seconds before it may try again."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1:
                return (1 - tokens) / self._refill_per_s
            self._buckets[key] = (tokens - 1, now)
            self._buckets.move_to_end(key)
            if len(self._buckets) > self.max_keys:
                self._trim(now)
            return 0.0

    def _trim(self, now: float) -> None:
        full = [key for key in self._buckets if self._tokens(key, now) >= self.limit]
        for key in full:
            del self._buckets[key]
        # Down to nine tenths, so that a table full of active keys is not walked again at every new one.
        while len(self._buckets) > self.max_keys * 9 // 10:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
