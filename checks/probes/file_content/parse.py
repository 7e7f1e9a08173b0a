"""Choosing the lines of a file's text."""

from __future__ import annotations

import re


def select_lines(text: str, pattern: str | None, skip_comments: bool) -> list[str]:
    regex = re.compile(pattern) if pattern else None
    selected = []
    for raw in text.splitlines():
        line = raw.strip()
        if skip_comments and (not line or line.startswith("#")):
            continue
        if regex is None or regex.search(line):
            selected.append(line)
    return selected
