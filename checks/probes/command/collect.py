"""The command probe: the same on every platform (the Host runs the argument list)."""

from __future__ import annotations

import json
import shlex

from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params


def collect_command(host: Host, params: Params) -> Facts:
    argv = params["argv"]
    if not argv:
        raise ProbeError("command probe needs a non-empty argv")
    result = host.run(list(argv), timeout=float(params["timeout"]), max_output=int(params["max_output"]))
    facts: Facts = {
        "exit_code": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "truncated": result.truncated,
    }
    if params["parse"] == "lines":
        facts["lines"] = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    elif params["parse"] == "json":
        if result.truncated:
            raise ProbeError(f"output of {shlex.join(argv)} went past {params['max_output']} bytes; cannot parse JSON")
        try:
            parsed = json.loads(result.stdout) if result.stdout.strip() else None
        except json.JSONDecodeError as exc:
            raise ProbeError(f"output of {shlex.join(argv)} is not JSON: {exc}") from exc
        facts["json"] = parsed if isinstance(parsed, dict) or parsed is None else {"value": parsed}
    return facts
