"""Text from hosts, policies and people, made safe for the reader it is shown to.

Host names, observed facts and waiver text come from machines an attacker may control. Shown raw on a
terminal, an escape sequence can clear the screen or forge a row; opened in a spreadsheet, a cell that
starts with `=` runs as a formula. Every output goes through one of these:

- `printable(text)`: control characters (C0, DEL, C1) and the Unicode bidirectional overrides shown as
  visible escapes (`\\x1b`, `\\n`, `\\u202e`), so one value stays one line of text.
- `visible(text)`: the same, but line breaks and tabs kept (a CRLF read as a newline), for text that may
  span lines where a line break is harmless: HTML (the dashboard, the briefing and its PDF) and CSV cells.
  A browser shows an escape character as nothing, yet it is still in what a reader copies and pastes.
- `csv_cell(value)`: a text cell made `visible`, and one that a spreadsheet would read as a formula is
  prefixed with `'` (OWASP's advice for CSV injection: cells starting with `=`, `+`, `-`, `@`, tab or
  carriage return).
- `html_finalize(value)`: Jinja's `finalize` for the HTML templates: every text value made `visible`.
- `SafeCsvWriter` / `SafeDictWriter`: the csv module's writers with every text cell passed through
  `csv_cell`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# C0 controls, DEL, C1 controls; the bidirectional embeddings, overrides and isolates that reorder what
# a terminal shows (a name that reads one way and sorts another).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character shown as an escape; a backslash stays as it is."""
    return _UNPRINTABLE.sub(_escape, text)


_UNPRINTABLE_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every control character shown as an escape but newlines and tabs (CRLF as a newline)."""
    return _UNPRINTABLE_BUT_LINES.sub(_escape, text.replace("\r\n", "\n"))


def html_finalize(value: Any) -> Any:
    """Jinja `finalize`: text shown `visible`; markup the template built (Markup) kept as markup."""
    if not isinstance(value, str):
        return value
    cleaned = visible(value)
    if cleaned == value:
        return value
    return type(value)(cleaned) if hasattr(value, "__html__") else cleaned


def csv_cell(value: Any) -> Any:
    """A cell for CSV: text made `visible`, and text that a spreadsheet would evaluate prefixed with `'`;
    other values as they are."""
    if not isinstance(value, str):
        return value
    value = visible(value)
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose text cells cannot become formulas."""

    def __init__(self, stream: Any, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Sequence[Any]) -> Any:
        return self._writer.writerow([csv_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """`csv.DictWriter` whose text cells cannot become formulas (the header row included)."""

    def __init__(self, stream: Any, fieldnames: Sequence[str], **options: Any) -> None:
        self._writer = csv.DictWriter(stream, fieldnames=fieldnames, **options)
        self.fieldnames = list(fieldnames)

    def writeheader(self) -> Any:
        return self._writer.writerow({name: csv_cell(name) for name in self.fieldnames})

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({key: csv_cell(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
