"""The agent honours the collector's own Retry-After, which ASGI sends in lower case (`retry-after`).

Found by the herd scenario (test_herd.py): 200 agents came back 0.5-1 s after a 503 that asked for 2 s,
because the transport looked the header up with a case-sensitive dict, so only proxies that happen to
write `Retry-After` were obeyed. Fast: one overloaded in-process collector, one real transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.transport import RetryPolicy, Throttled, Transport
from checks import wire
from checks.backoff import Backoff
from tests.support.agents import make_results
from tests.support.live import LiveCollector, live_collector


@pytest.fixture
def overloaded(tmp_path: Path) -> Iterator[LiveCollector]:
    # no report may wait: the second concurrent report is refused with 503 and Retry-After
    with live_collector(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", max_pending_ingest=0, retry_after_s=7) as live:
        yield live


def test_the_collectors_lower_case_retry_after_is_honoured(overloaded: LiveCollector) -> None:
    sim = overloaded.enrolled_agent()
    raw = sim.report(make_results(1))
    assert raw.status_code == 503 and raw.headers["Retry-After"] == "7"
    assert "retry-after" in raw.raw.headers.keys()  # as the collector sends it, in lower case
    transport = Transport(overloaded.url, verify=overloaded.ca_file, agent_id=sim.agent_id, key=sim.key)
    body = wire.make_report(agent_id=sim.agent_id, results=make_results(1))
    with pytest.raises(Throttled) as refused:
        transport.request("POST", "/api/v1/reports", payload=body)
    assert refused.value.retry_after_s == 7
    # and a delivery that is refused waits what the collector asked, not its own shorter backoff
    slept: list[float] = []
    policy = RetryPolicy(attempts=2, backoff=Backoff(0.1, 0.2), retry_after_max_s=3600, sleep=slept.append)
    with pytest.raises(Throttled):
        transport.call("POST", "/api/v1/reports", payload=body, retry=policy)
    assert slept == [7]
    transport.close()
