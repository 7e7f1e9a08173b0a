"""Loading waiver files: accepted risks, each approved by someone other than its requester, until a date.

The schema checks each waiver's shape; this module what it cannot (duplicate ids, the four-eyes rule,
real dates) and whether each waiver names a check some policy defines. Problems are named as the
author knows the waiver (`waiver W-1: justification`), not by its place in a list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from checks.policy import schema as schema_mod
from checks.policy.documents import Context, read_document
from checks.policy.errors import Issue, PathT, PolicyError, render_path, schema_problems
from checks.policy.expr_parser import Problem
from checks.policy.model import Policy, Waiver, WaiverScope


def load_waiver_file(path: str | Path) -> list[Waiver]:
    source, document = read_document(path)
    return load_waivers(document.data, Context(source, document))


def load_waiver_document(data: Any, source: str = "<waivers>") -> list[Waiver]:
    return load_waivers(data, Context(source, None))


def _waiver_where(data: Any) -> Callable[[PathT], str]:
    """Where in a waiver file, as its author knows it: `waiver W-1: justification`, not `waivers[0].justification`."""

    def where(path: PathT) -> str:
        listed = data.get("waivers") if isinstance(data, dict) else None
        if len(path) < 2 or path[0] != "waivers" or not isinstance(path[1], int) or not isinstance(listed, list):
            return render_path(path)
        raw = listed[path[1]] if path[1] < len(listed) else None
        waiver_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"waiver {waiver_id}" if isinstance(waiver_id, str) and waiver_id.strip() else f"waiver {path[1] + 1}"
        rest = path[2:]
        return f"{label}: {render_path(rest)}" if rest else label

    return where


def load_waivers(data: Any, ctx: Context) -> list[Waiver]:
    """The waivers of a parsed document (`load_files` reads a file once, then tells its kind)."""
    if not isinstance(data, dict):
        raise PolicyError([Issue(ctx.source, 1, "a waiver file is a mapping with a `waivers:` list")])
    validator = jsonschema.Draft202012Validator(schema_mod.waiver_schema())
    structural = schema_problems(validator, data, _waiver_where(data))
    if structural:
        raise PolicyError(ctx.issues(structural))
    waivers: list[Waiver] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["waivers"]):
        path: PathT = ("waivers", index)
        if raw["id"] in seen:
            ctx.problems.append(Problem(path + ("id",), f"duplicate waiver id {raw['id']!r}"))
            continue
        seen.add(raw["id"])
        if raw["requested_by"].strip().lower() == raw["approved_by"].strip().lower():
            ctx.problems.append(
                Problem(path + ("approved_by",), f"waiver {raw['id']}: the approver must not be the requester")
            )
            continue
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError:
            ctx.problems.append(
                Problem(
                    path + ("expires",), f"waiver {raw['id']}: expires {raw['expires']!r} is not a date; use YYYY-MM-DD"
                )
            )
            continue
        scope = raw["scope"]
        waivers.append(
            Waiver(
                id=raw["id"],
                check=raw["check"],
                policy=raw.get("policy"),
                scope=WaiverScope(
                    hosts=tuple(scope.get("hosts", [])),
                    groups=tuple(scope.get("groups", [])),
                    tenants=tuple(scope.get("tenants", [])),
                    resources=tuple(scope.get("resources", [])),
                    everywhere=bool(scope.get("all", False)),
                ),
                justification=raw["justification"],
                requested_by=raw["requested_by"],
                approved_by=raw["approved_by"],
                expires=expires,
                ticket=raw.get("ticket", ""),
                source=ctx.source,
                line=ctx.line(path),
            )
        )
    if ctx.problems:
        raise PolicyError(ctx.issues())
    return waivers


def check_waivers_against(waivers: list[Waiver], policies: list[Policy]) -> list[Issue]:
    """Waivers naming a check that none of the given policies defines."""
    issues: list[Issue] = []
    for waiver in waivers:
        candidates = [p for p in policies if waiver.policy is None or p.id == waiver.policy]
        if not any(p.check(waiver.check) for p in candidates):
            where = f" in policy {waiver.policy}" if waiver.policy else ""
            issues.append(
                Issue(
                    waiver.source,
                    waiver.line,
                    f"waiver {waiver.id} names unknown check {waiver.check!r}{where}",
                )
            )
    return issues
