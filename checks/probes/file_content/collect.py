"""The file_content probe: the same on every platform (the Host reads the file)."""

from __future__ import annotations

from checks.probes import grammar
from checks.probes.file_content.parse import select_lines
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_file_content(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    if host.stat(path) is None:
        return {"exists": False, "lines": [], "match_count": 0}
    lines = select_lines(host.read_text(path), params.get("pattern"), params.get("skip_comments", True))
    return {"exists": True, "lines": lines, "match_count": len(lines)}
