"""The key_value_file probe: the same on every platform (the Host reads the file)."""

from __future__ import annotations

import re

from checks.probes import grammar
from checks.probes.common import parse_key_values
from checks.probes.grammar import require
from checks.probes.host import Host
from checks.probes.registry import Facts, Params


def collect_key_value_file(host: Host, params: Params) -> Facts:
    path = require(grammar.path_problem, params["path"], host.platform)
    if host.stat(path) is None:
        return {"exists": False, "settings": {}, "numbers": {}}
    settings = parse_key_values(host.read_text(path), params["separator"])
    # Only plain decimals: a leading zero often means octal (UMASK 027), so it stays a string.
    numbers = {k: int(v) for k, v in settings.items() if re.fullmatch(r"-?(0|[1-9][0-9]*)", v)}
    return {"exists": True, "settings": settings, "numbers": numbers}
