"""Rate limits per client address: enrolment attempts and bad API tokens; X-Forwarded-For believed only
from a trusted proxy."""

from __future__ import annotations

import pytest

from collector.api.ratelimit import RateLimiter, client_key, retry_after
from tests.support.live import LiveCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_one_attempt_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60, clock=clock)
    assert [limiter.spend("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.spend("a") == pytest.approx(20.0)  # one more every 60/3 s
    assert limiter.waiting("a") == pytest.approx(20.0)
    assert limiter.spend("b") == 0.0  # another key has its own bucket
    clock.now += 20
    assert limiter.waiting("a") == 0.0
    assert limiter.spend("a") == 0.0 and limiter.spend("a") > 0
    clock.now += 600
    assert [limiter.spend("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled to the burst, no more
    assert retry_after(0.2) == "1" and retry_after(20.0) == "20" and retry_after(20.1) == "21"


def test_waiting_counts_nothing() -> None:
    limiter = RateLimiter(1, 60, clock=Clock())
    assert all(limiter.waiting("a") == 0.0 for _ in range(10))
    assert limiter.spend("a") == 0.0 and limiter.waiting("a") > 0


def test_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 60, max_keys=100, clock=clock)
    for index in range(1000):
        limiter.spend(f"k{index}")
        assert len(limiter) <= 100
    assert limiter.spend("k999") == 0.0 and limiter.spend("k999") > 0  # the newest are kept


def test_ipv6_clients_are_keyed_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("") == ""


@pytest.mark.parametrize("live_config", [{"enroll_attempts_per_minute": 3}])
def test_enrolment_attempts_are_limited_per_address(live: LiveCollector) -> None:
    token = live.enrollment_token(uses=10)
    agents = [live.agent() for _ in range(5)]
    assert agents[0].enroll(token).status_code == 201
    assert agents[1].enroll("not-a-token").status_code == 401  # failures count too
    assert agents[2].enroll(token).status_code == 201
    refused = agents[3].enroll(token)
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    # A client cannot claim to be someone else: X-Forwarded-For is not believed from an untrusted peer.
    agents[4].session.headers["X-Forwarded-For"] = "203.0.113.9"
    assert agents[4].enroll(token).status_code == 429


@pytest.mark.parametrize(
    "live_config", [{"enroll_attempts_per_minute": 1, "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}]
)
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(live: LiveCollector) -> None:
    token = live.enrollment_token(uses=10)

    def enrol_from(address: str) -> int:
        agent = live.agent()
        agent.session.headers["X-Forwarded-For"] = address
        return agent.enroll(token).status_code

    assert [enrol_from("203.0.113.1"), enrol_from("203.0.113.2")] == [201, 201]
    assert enrol_from("203.0.113.1") == 429
    # The client is the last address not of a trusted proxy: what a client wrote before it is ignored.
    assert enrol_from("198.51.100.7, 203.0.113.1, 10.1.2.3") == 429


@pytest.mark.parametrize("live_config", [{"api_auth_failures_per_minute": 3, "trusted_proxies": ["127.0.0.1"]}])
def test_bad_api_tokens_are_limited_per_address(live: LiveCollector) -> None:
    guesser = live.session("rpa_not-a-real-token")
    guesser.headers["X-Forwarded-For"] = "203.0.113.5"
    assert [guesser.get(live.url + "/api/v1/summary").status_code for _ in range(3)] == [401, 401, 401]
    refused = guesser.get(live.url + "/api/v1/summary")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # From that address even a good token waits: the guesses are not checked any more.
    same_address = live.admin()
    same_address.headers["X-Forwarded-For"] = "203.0.113.5"
    assert same_address.get(live.url + "/api/v1/summary").status_code == 429
    # Good tokens elsewhere are not affected, and a good token's calls are never counted.
    elsewhere = live.admin()
    elsewhere.headers["X-Forwarded-For"] = "203.0.113.6"
    assert [elsewhere.get(live.url + "/api/v1/summary").status_code for _ in range(5)] == [200] * 5
