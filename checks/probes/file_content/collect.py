"""The file_content probe: the same on every platform (the Host reads the file)."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.file_content.parse import select_lines
from checks.probes.grammar import require
from checks.probes.host import Host, ProbeError
from checks.probes.registry import Facts, Params
from checks.regex_budget import RegexTooSlow, time_limit, too_slow_reason


def collect_file_content(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    if host.stat(path) is None:
        return {"exists": False, "lines": [], "match_count": 0}
    text = host.read_text(path)
    try:
        with time_limit():  # a pushed policy's pattern must not pin the agent's CPU
            lines = select_lines(text, params.get("pattern"), params.get("skip_comments", True))
    except RegexTooSlow as exc:
        raise ProbeError(too_slow_reason(str(params["pattern"]), f"the lines of {path}", exc)) from None
    return {"exists": True, "lines": lines, "match_count": len(lines)}
