"""Hostile text stays text: escaped for terminals, formula-safe in CSV."""

from __future__ import annotations

import csv
import io

from markupsafe import Markup

from checks.output import format_table
from checks.safetext import SafeCsvWriter, SafeDictWriter, csv_cell, html_finalize, printable, visible


def test_control_characters_are_shown_escaped() -> None:
    assert printable("web-01\x1b[2J\x1b[H") == "web-01\\x1b[2J\\x1b[H"
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("bell\x07 del\x7f c1\x9b") == "bell\\x07 del\\x7f c1\\x9b"
    assert printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert printable("plain text, é and 漢字 \\x1b") == "plain text, é and 漢字 \\x1b"


def test_a_table_cell_cannot_add_a_row_or_clear_the_screen() -> None:
    table = format_table(["HOST", "STATUS"], [["web\n01  pass", "fail"], ["\x1b[2Jx", "pass"]], stream=io.StringIO())
    lines = table.splitlines()
    assert len(lines) == 3
    assert "\x1b" not in table
    assert lines[1].startswith("web\\n01  pass")


def test_formula_cells_are_neutralised() -> None:
    for hostile in ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx"):
        assert csv_cell(hostile) == "'" + hostile
    assert csv_cell("\rx") == "\\rx"  # a lone carriage return is shown as an escape: no longer a formula
    assert csv_cell("web-01") == "web-01"
    assert csv_cell(-5) == -5 and csv_cell(None) is None


def test_safe_writers_neutralise_every_text_cell() -> None:
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerows([["=1+1", 3, "ok"]])
    dict_buffer = io.StringIO()
    writer = SafeDictWriter(dict_buffer, fieldnames=["host", "n"])
    writer.writeheader()
    writer.writerow({"host": "@evil", "n": -1})
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["'=1+1", "3", "ok"]]
    assert list(csv.DictReader(io.StringIO(dict_buffer.getvalue()))) == [{"host": "'@evil", "n": "-1"}]


def test_visible_keeps_line_breaks_and_shows_other_controls() -> None:
    """For HTML and CSV cells: escapes shown, line breaks and tabs kept, CRLF read as a newline."""
    assert visible("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert visible("one\r\ntwo\n\tthree\rfour") == "one\ntwo\n\tthree\\rfour"
    assert visible("\u202eexe.txt") == "\\u202eexe.txt"
    assert csv_cell("host\x1b]0;owned\x07") == "host\\x1b]0;owned\\x07"
    assert html_finalize(Markup("<b>\x1b</b>")) == Markup("<b>\\x1b</b>")
    assert html_finalize(3) == 3 and html_finalize("plain") == "plain"
