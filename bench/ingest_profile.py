"""Where the collector's Python time per stored report goes, stage by stage, on PostgreSQL.

    python bench/ingest_profile.py                          # 50 agents x 40 reports, stage table
    python bench/ingest_profile.py --pyinstrument           # and pyinstrument's call tree of the store

The reports are like the HTTP benchmark's (bench/ingest_http.py): 40 results, the first report of each
agent creating them, each later one flipping one result's status. Each stage runs as the collector runs
it for POST /api/v1/reports, in this process and one thread, and is timed in CPU time (time.process_time,
this process only: PostgreSQL's own CPU is not in it):

- parse headers: the signature headers, as the API reads them;
- verify signature: the public key loaded from its text and the Ed25519 signature over the body checked;
- decode: the typed decoder (collector/storage/report_codec.py);
- store: FastReportStore.store (admit, plan, statements, round trips), broken down below by pyinstrument.

What it leaves out is the HTTP layer (uvicorn, Starlette, TLS, the route's own checks): the HTTP
benchmark's collector CPU per report less the sum here. Figures are printed as Markdown.

The collector's and PostgreSQL's CPU per report over HTTPS is bench/ingest_http.py's (PostgreSQL counted
for the benchmark's own database only, and its background processes apart: bench/_measure.py).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks import wire  # noqa: E402
from collector.storage import migrate, models, registry  # noqa: E402
from collector.storage.assignments import AssignmentCache  # noqa: E402
from collector.storage.engine import make_engine, write_tx  # noqa: E402
from collector.storage.fast_ingest import FastReportStore  # noqa: E402
from collector.storage.ingest import SignedEvidence  # noqa: E402
from collector.storage.report_codec import decode_report  # noqa: E402
from collector.storage.waivers import WaiverCache  # noqa: E402
from tests.support.agents import make_results  # noqa: E402
from tests.support.databases import temporary_database  # noqa: E402
from tests.support.policies import store_fleet_policy  # noqa: E402

CHECKS = 40
PATH = "/api/v1/reports"


def bodies_for(agent_id: str, count: int, rng: random.Random) -> list[bytes]:
    """As the HTTP benchmark sends them: 40 results, then one status flipped per report, one run time each."""
    results = make_results(CHECKS, fail_every=5)
    bodies = []
    for index in range(count):
        if index:
            flip = results[rng.randrange(CHECKS)]
            flip["status"] = "pass" if flip["status"] == "fail" else "fail"
        stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=count - index)).isoformat(timespec="seconds")
        for result in results:
            result["evaluated_at"] = stamp
        report = wire.make_report(agent_id=agent_id, results=results, report_id=str(uuid.uuid4()))
        bodies.append(json.dumps(report).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-url", default=os.environ.get("RAMPART_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--reports-per-agent", type=int, default=40)
    parser.add_argument("--pyinstrument", action="store_true", help="also print pyinstrument's tree of the store")
    parser.add_argument(
        "--cpu-functions",
        type=int,
        default=0,
        metavar="N",
        help="also print the N functions of the store that "
        "spend the most CPU (cProfile with a CPU clock: pyinstrument's tree is wall time, waits included)",
    )
    args = parser.parse_args()
    with temporary_database(args.pg_url, "rampart_profile") as url:
        print(markdown(profile(args, url)))
    return 0


def profile(args: argparse.Namespace, url: str) -> dict[str, Any]:
    engine = make_engine(url, 2)
    migrate.upgrade(engine)
    store_fleet_policy(engine)
    now = models.utcnow()
    keys = [wire.generate_key() for _ in range(args.agents)]
    with write_tx(engine) as connection:
        token, _ = registry.create_token(
            connection, group="default", max_uses=args.agents, valid_for=dt.timedelta(hours=1), created_by="b", now=now
        )
        for index, key in enumerate(keys):
            registry.enroll(
                connection, agent_id=wire.agent_id_for(key), public_key=wire.public_key_text(key), token=token,
                host={"hostname": f"profile-{index:05d}"}, now=now,
            )  # fmt: skip
    engine.dispose()
    rng = random.Random(1)
    store = FastReportStore(url, 1, WaiverCache(), AssignmentCache("default", dt.timedelta(hours=24)))
    work = []
    for key in keys:
        agent_id = wire.agent_id_for(key)
        for body in bodies_for(agent_id, args.reports_per_agent, rng):
            headers = wire.sign_request(key, agent_id, "POST", PATH, body)
            work.append((wire.public_key_text(key), agent_id, headers, body))
    first = {agent for _, agent, _, _ in work}
    stages: dict[str, float] = {"parse headers": 0.0, "verify signature": 0.0, "decode": 0.0, "store": 0.0}
    measured = 0
    profiler = None
    cpu = cProfile.Profile(time.process_time) if args.cpu_functions else None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
    wall = 0.0
    rewritten = 0
    for public_key, agent_id, headers, body in work:
        steady = agent_id not in first  # each agent's first report creates its rows: not the steady state
        first.discard(agent_id)
        began = time.perf_counter()
        clock = _Clock()
        signed = clock.run("parse headers", lambda headers=headers: wire.parse_signed_headers(headers))
        clock.run(
            "verify signature",
            lambda k=public_key, s=signed, b=body: wire.verify_request(wire.load_public_key(k), s, "POST", PATH, b),
        )
        parsed = clock.run("decode", lambda b=body, a=agent_id: decode_report(b, a))
        assert parsed is not None
        evidence = SignedEvidence("POST", PATH, signed.timestamp, signed.content_sha256, wire.b64url(signed.signature))
        if profiler is not None and steady:
            profiler.start()
        if cpu is not None and steady:
            cpu.enable()
        outcome = clock.run("store", lambda p=parsed, b=body, e=evidence: store.store(p, b, e, models.utcnow()))
        if cpu is not None and steady:
            cpu.disable()
        if profiler is not None and steady:
            profiler.stop()
        assert not outcome.duplicate and not outcome.not_counted
        if steady:
            measured += 1
            rewritten += getattr(outcome, "rewritten", outcome.stored)  # before version 0009: every row
            wall += time.perf_counter() - began
            for name, spent in clock.spent.items():
                stages[name] += spent
    store.dispose()
    figures: dict[str, Any] = {
        "reports": measured,
        "stages_ms": {name: spent / measured * 1000 for name, spent in stages.items()},
        "wall_ms": wall / measured * 1000,
        "rewritten_per_report": rewritten / measured,
    }
    if cpu is not None:
        text = io.StringIO()
        pstats.Stats(cpu, stream=text).sort_stats("tottime").print_stats(args.cpu_functions)
        figures["functions"] = text.getvalue()
    if profiler is not None:
        figures["tree"] = profiler.output_text(unicode=True, color=False, show_all=False)
    return figures


class _Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def run(self, name: str, work: Callable[..., Any]) -> Any:
        began = time.process_time()
        value = work()
        self.spent[name] = self.spent.get(name, 0.0) + time.process_time() - began
        return value


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        f"Collector Python CPU per stored report, steady state ({figures['reports']} reports, one thread):",
        "",
        "| stage | ms CPU per report |",
        "|---|---|",
    ]
    for name, spent in figures["stages_ms"].items():
        lines.append(f"| {name} | {spent:.3f} |")
    lines.append(f"| total (without HTTP) | {sum(figures['stages_ms'].values()):.3f} |")
    lines.append(f"| wall time per report (PostgreSQL's round trips included) | {figures['wall_ms']:.3f} |")
    lines += ["", f"Latest rows rewritten per report: {figures['rewritten_per_report']:.2f} of {CHECKS}."]
    if "functions" in figures:
        lines += ["", "```", figures["functions"].strip(), "```"]
    if "tree" in figures:
        lines += ["", "```", figures["tree"].rstrip(), "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
