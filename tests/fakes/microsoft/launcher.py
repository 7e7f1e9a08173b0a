"""The fake in a process of its own, so that its memory is not measured with the client's (the large-tenant
test and bench/): `python -m tests.fakes.microsoft --users 100000`, and `SpawnedFake` to run it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trustme

from tests.fakes.microsoft.constants import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.fakes.microsoft.graph import GeneratedUsers
from tests.fakes.microsoft.scenario import Scenario
from tests.fakes.microsoft.server import FakeMicrosoft


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.microsoft", description="Serve a fake Microsoft tenant until stdin closes."
    )
    parser.add_argument("--users", type=int, default=100_000, help="users in the generated registration report")
    parser.add_argument("--page-size", type=int, default=1000, help="Graph page size")
    parser.add_argument("--directory", required=True, help="where to write ca.pem")
    args = parser.parse_args(argv)
    ca = trustme.CA()
    ca_path = Path(args.directory) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    scenario = Scenario(users=GeneratedUsers(args.users), graph_page_size=args.page_size, security_defaults=True)
    with FakeMicrosoft(ca, scenario, ca_path=ca_path) as fake:
        print(
            json.dumps({"port": fake.port, "ca_path": str(ca_path), "expected": scenario.users.expected()}), flush=True
        )
        sys.stdin.read()  # the parent closes stdin (or dies) to stop us
        served = sum(1 for r in fake.requests if r.path.endswith("userRegistrationDetails"))
        print(json.dumps({"pages_served": served}), flush=True)
    return 0


class SpawnedFake:
    """The fake tenant in a child process (`main` above), so its memory is not measured with ours."""

    def __init__(self, users: int, directory: Path, page_size: int = 1000) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.microsoft", "--users", str(users), "--page-size", str(page_size),
             "--directory", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(Path(__file__).resolve().parents[3]),
        )  # fmt: skip
        assert self.process.stdout is not None
        ready = json.loads(self.process.stdout.readline())
        self.port = int(ready["port"])
        self.ca_path = str(ready["ca_path"])
        self.expected: dict[str, int] = ready["expected"]
        self.pages_served = 0

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def config(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority_url": self.base_url,
            "graph_url": f"{self.base_url}/graph",
            "arm_url": f"{self.base_url}/arm",
            "ca_bundle": self.ca_path,
            "timeout_s": 60.0,
        }
        values.update(overrides)
        return values

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        line = self.process.stdout.readline()
        if line:
            self.pages_served = int(json.loads(line)["pages_served"])
        self.process.stdout.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> SpawnedFake:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop()
