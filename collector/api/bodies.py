"""JSON from requests, parsed within limits: a body nested too deeply is a 400, never a RecursionError.

Python's parsers (json, msgspec) refuse nesting beyond the interpreter's recursion limit by raising
RecursionError, which would reach the client as a 500; and a document nested a few hundred levels deep
parses, but breaks whatever walks it afterwards (schema validation, the response encoder). So:

- `loads(body)`: the parsed value, or BadJson when the body is not JSON or nests deeper than allowed
  (MAX_JSON_DEPTH for enrolment, check-in and API bodies).
- `check_depth(value)`: BadJson when an already parsed value nests deeper than allowed (walked without
  recursion).

Sizes are bounded before this: every body is at most `collector.max_body_bytes` (collector/api/app.py).
"""

from __future__ import annotations

import json
from typing import Any

# Host facts, policies and waivers are a few levels deep; this is ample, and far from Python's limits.
MAX_JSON_DEPTH = 32


class BadJson(ValueError):
    pass


def loads(body: bytes, max_depth: int | None = MAX_JSON_DEPTH) -> Any:
    """`max_depth` None: only what the parser itself can nest (reports, at fleet rate, where walking
    every value again would cost as much as parsing it)."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise BadJson(f"the body nests deeper than {max_depth or 'the parser allows'} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadJson(f"the body is not JSON: {exc}") from None
    if max_depth is not None:
        check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int = MAX_JSON_DEPTH, what: str = "the body") -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            raise BadJson(f"{what} nests deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
