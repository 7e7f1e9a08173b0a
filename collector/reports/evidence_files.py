"""What every writer of the evidence pack shares: the export request, the pack's files before they are
zipped, JSON lines and CSV values, the batch size and the progress callback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from collector.reports.periods import Period, date_range, quarter_containing

BATCH = 1000

# (what is being written, rows so far, rows expected when known): drives the command's progress bar.
Progress = Callable[[str, int, int | None], None]


class EvidenceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExportRequest:
    """A period (start..end), or as at one day (start None). Optional framework, group, raw reports."""

    end: dt.date
    start: dt.date | None = None
    framework: str | None = None
    group: str | None = None
    with_reports: bool = False

    def parameters(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.start else None,
            "as_of": None if self.start else self.end.isoformat(),
            "framework": self.framework,
            "group": self.group,
            "with_reports": self.with_reports,
        }

    @property
    def first_day(self) -> dt.date:
        return self.start or self.end

    def period(self, year_starts: int) -> Period:
        """The briefing's period: the range, or for an as-at export the quarter up to that day."""
        if self.start:
            return date_range(self.start, self.end)
        quarter = quarter_containing(self.end, year_starts)
        return Period(quarter.start, self.end, f"{quarter.label} to {self.end.isoformat()}", quarter.quarter,
                      quarter.year_starts)  # fmt: skip


class Files:
    """The pack's files in a temporary directory, before they are zipped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []

    def open(self, name: str, binary: bool = False) -> IO[Any]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.names.append(name)
        if binary:
            return path.open("wb")
        return path.open("w", encoding="utf-8", newline="")

    def write_json(self, name: str, data: Any) -> None:
        with self.open(name) as stream:
            json.dump(data, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, binary=True) as stream:
            stream.write(data)


def csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def jsonl(stream: IO[str], record: Mapping[str, Any]) -> None:
    stream.write(json.dumps(record, sort_keys=True, default=str, separators=(",", ":")))
    stream.write("\n")
