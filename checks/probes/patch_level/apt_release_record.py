"""How old a pending apt security update is, when apt keeps no release date.

apt's indexes say which updates exist, never since when. Two things bound the age all the same:

- An update listed in an index refreshed at time R was released by R: its age is at least now - R. This
  needs nothing kept, and settles the Cyber Essentials question at once on a host whose index is old.
- The agent keeps a record (a small JSON file in its own state directory) of what each observation saw:
  the installed version of every package, which of them had a pending security update, and the sources
  apt read. An update that the previous observation's index (refreshed at P) did not list, for the same
  installed version and the same sources, was released after P: its age is at most now - P. Its lower
  bound stays the refresh time of the first index that listed it.

So each pending update's release lies in a known interval, as narrow as the index refreshes are frequent.
An update already pending when the record began, or after the package was installed or changed, or
after a source was added (a security suite added to sources.list brings old updates with it), has no
upper bound: its age is "at least", and a check can only fail on it, never pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RECORD_FILE = "apt-security-updates.json"
_FORMAT = 1


@dataclass(frozen=True)
class AgeBounds:
    """Seconds since the oldest pending security update was released: at least `least`, at most `most`
    (None: no bound)."""

    least: float | None
    most: float | None
    unbounded: int  # pending updates without an upper bound
    record_began: float | None = None  # when the record began (the first observation it holds)


@dataclass(frozen=True)
class Observation:
    installed: Mapping[str, str]  # package (as apt-cache named it) -> installed version
    security: Iterable[str]  # packages with a pending security update
    index_updated: float  # when the index these come from was refreshed
    sources: Iterable[str]  # the Release files apt read
    now: float


def bounds_without_record(observation: Observation) -> AgeBounds:
    pending = list(observation.security)
    if not pending:
        return AgeBounds(None, None, 0)
    return AgeBounds(max(observation.now - observation.index_updated, 0.0), None, len(pending))


def advance(previous: Mapping[str, Any] | None, observation: Observation) -> tuple[dict[str, Any], AgeBounds]:
    """The record after this observation, and the bounds it gives. Pure: the caller reads and writes."""
    usable = previous if _readable(previous) else None
    sources = sorted(set(observation.sources))
    earlier_pending: Mapping[str, Any] = usable["pending"] if usable else {}
    earlier_installed: Mapping[str, str] = usable["installed"] if usable else {}
    same_sources = usable is not None and usable["sources"] == sources
    earlier_index = float(usable["index_updated"]) if usable else None
    pending: dict[str, dict[str, float | None]] = {}
    for name in sorted(set(observation.security)):
        version = observation.installed.get(name)
        unchanged = usable is not None and version is not None and earlier_installed.get(name) == version
        kept = earlier_pending.get(name)
        if unchanged and isinstance(kept, dict):
            pending[name] = {"since": kept.get("since"), "after": kept.get("after")}
        elif unchanged and same_sources and earlier_index is not None and earlier_index < observation.index_updated:
            pending[name] = {"since": observation.index_updated, "after": earlier_index}
        else:
            pending[name] = {"since": observation.index_updated, "after": None}
    kept_began = usable.get("began") if usable else observation.now
    began = float(kept_began) if isinstance(kept_began, int | float) else None  # older records did not keep it
    record = {
        "format": _FORMAT,
        "began": began,
        "observed_at": observation.now,
        "index_updated": observation.index_updated,
        "sources": sources,
        "installed": dict(sorted(observation.installed.items())),
        "pending": pending,
    }
    bounds = _bounds(pending, observation.now)
    return record, dataclasses.replace(bounds, record_began=began)


def _readable(record: Mapping[str, Any] | None) -> bool:
    if not isinstance(record, Mapping) or record.get("format") != _FORMAT:
        return False
    return (
        isinstance(record.get("pending"), dict)
        and isinstance(record.get("installed"), dict)
        and isinstance(record.get("sources"), list)
        and isinstance(record.get("index_updated"), int | float)
    )


def _bounds(pending: Mapping[str, Mapping[str, float | None]], now: float) -> AgeBounds:
    if not pending:
        return AgeBounds(None, None, 0)
    since = [float(value) for entry in pending.values() if isinstance(value := entry.get("since"), int | float)]
    after = [float(value) for entry in pending.values() if isinstance(value := entry.get("after"), int | float)]
    unbounded = len(pending) - len(after)
    least = max(now - min(since), 0.0) if since else None
    most = max(now - min(after), 0.0) if not unbounded else None
    return AgeBounds(least, most, unbounded)


def read_record(path: str) -> dict[str, Any] | None:
    """The record, or None when there is none or it cannot be read (a new record starts: bounds only widen)."""
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def write_record(path: str, record: Mapping[str, Any]) -> None:
    """Replace the record in one step (a concurrent reader sees the old or the new one), owner-only."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".apt-record-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, separators=(",", ":"))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
