"""The transport's retry schedule with an injected clock and sleep, against a real closed port (a real
"connection refused"); what a live collector answers is shown in tests/agent/test_e2e_*.py."""

from __future__ import annotations

import random

import pytest
import requests

from agent.transport import RetryPolicy, Transport, Unreachable
from checks import wire
from checks.backoff import Backoff
from tests.agent.test_worker import closed_port_url


def transport(**kwargs: object) -> Transport:
    key = wire.generate_key()
    return Transport(closed_port_url(), verify=True, agent_id=wire.agent_id_for(key), key=key, **kwargs)  # type: ignore[arg-type]


def test_failed_requests_are_retried_on_the_backoff_schedule_then_given_up() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=4, backoff=Backoff(2, 60, rng=random.Random(3)), retry_after_max_s=60)
    policy.sleep = slept.append
    with pytest.raises(Unreachable, match="Connection refused"):
        transport().call("POST", "/api/v1/reports", payload={}, retry=policy)
    expected = Backoff(2, 60, rng=random.Random(3))
    assert slept == [expected.delay(0), expected.delay(1), expected.delay(2)]
    assert 1 <= slept[0] <= 2 and 2 <= slept[1] <= 4 and 4 <= slept[2] <= 8


def test_a_wait_past_the_deadline_ends_the_attempt_and_says_how_long_to_wait() -> None:
    slept: list[float] = []
    now = [100.0]
    policy = RetryPolicy(attempts=10, backoff=Backoff(30, 60, rng=random.Random(1)), retry_after_max_s=60)
    policy.sleep, policy.monotonic = slept.append, lambda: now[0]
    with pytest.raises(Unreachable) as raised:
        transport().call("GET", "/api/v1/policy", retry=policy, deadline=110.0)
    assert slept == []  # no sleeping past the budget
    assert raised.value.retry_after_s is not None and 15 <= raised.value.retry_after_s <= 30


def test_requests_are_signed_with_the_corrected_clock_and_ignore_the_environment() -> None:
    session = requests.Session()
    sender = transport(time_fn=lambda: 1_800_000_000.4, clock_offset_s=-30.0, session=session)
    assert sender.signing_time() == 1_799_999_970
    assert session.trust_env is False  # no REQUESTS_CA_BUNDLE, no proxy from the environment
