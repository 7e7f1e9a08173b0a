"""Output for people (aligned tables) and for machines (JSON)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from checks.safetext import printable

_STATUS_COLOURS = {
    "pass": "32",
    "fail": "31",
    "error": "33",
    "not_applicable": "90",
    "waived": "36",
    "critical": "31;1",
    "high": "31",
}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def colour(text: str, stream: TextIO) -> str:
    code = _STATUS_COLOURS.get(text)
    return f"\x1b[{code}m{text}\x1b[0m" if code and use_colour(stream) else text


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    stream: TextIO | None = None,
    coloured: Sequence[int] = (),
    wrap_last: bool = True,
) -> str:
    """An aligned table; the last column is cut to the terminal width when writing to a terminal.

    Every cell is shown as text: control characters (a host name carrying an escape sequence or a newline)
    appear escaped, so no value can clear the screen or forge a row.
    """
    stream = stream or sys.stdout
    headers = [printable(str(header)) for header in headers]
    text_rows = [["" if cell is None else printable(str(cell)) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for index, cell in enumerate(row[:-1] if wrap_last else row):
            widths[index] = max(widths[index], len(cell))
    if wrap_last and text_rows:
        widths[-1] = max([len(headers[-1])] + [len(row[-1]) for row in text_rows])
    limit = shutil.get_terminal_size((200, 24)).columns if stream.isatty() else None
    lines = []
    for row_index, row in enumerate([list(headers)] + text_rows):
        cells = []
        for index, cell in enumerate(row):
            shown = cell
            if limit and index == len(row) - 1:
                room = max(limit - sum(widths[:-1]) - 2 * (len(widths) - 1), 20)
                if len(shown) > room:
                    shown = shown[: room - 1] + "…"
            padded = shown.ljust(widths[index]) if index < len(row) - 1 else shown
            if row_index > 0 and index in coloured:
                padded = colour(cell, stream) + " " * (widths[index] - len(cell))
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def first_line(text: str, limit: int = 100) -> str:
    """A table's short form of a longer text (a check's remediation): its first line, cut to `limit`
    characters with an ellipsis when longer, or when more lines follow."""
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    if len(line) > limit:
        return line[: limit - 1] + "…"
    return line + (" …" if len(lines) > 1 else "")


def remediation_rows(results: Sequence[tuple[str, str, str | None]]) -> list[tuple[str, str]]:
    """(check, short remediation) for each (check, status, remediation) that failed or could not be judged."""
    return [(check, first_line(text)) for check, status, text in results if status in ("fail", "error") and text]


def error_notes(status: str, observed: Any) -> list[str]:
    """The probe's `notes` for a result that could not be judged: they say what it could not read, and why
    (a missing tool, a scan never run), which the reason alone does not. Nothing for other statuses."""
    notes = observed.get("notes") if status == "error" and isinstance(observed, dict) else None
    if not isinstance(notes, list):
        return []
    return [str(note) for note in notes if str(note).strip()]


NOTES_SHOWN = 3  # per check in a table; the rest are in --format json


def note_rows(results: Sequence[tuple[str, str, Any]]) -> list[tuple[str, str]]:
    """(check, short note) for each (check, status, observed) that is an error with probe notes: at most
    NOTES_SHOWN per check, each cut to a line, and a last row saying how many more the JSON holds."""
    rows: list[tuple[str, str]] = []
    for check, status, observed in results:
        notes = error_notes(status, observed)
        rows.extend((check, first_line(note)) for note in notes[:NOTES_SHOWN])
        if len(notes) > NOTES_SHOWN:
            rows.append((check, f"… {len(notes) - NOTES_SHOWN} more (--format json)"))
    return rows


def print_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")
