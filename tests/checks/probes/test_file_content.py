"""The file_content probe on a file written for the test."""

from __future__ import annotations

from pathlib import Path

from tests.checks.probes.live import probe


def test_file_content_keeps_the_matching_lines(tmp_path: Path) -> None:
    config = tmp_path / "login.defs"
    config.write_text("# comment\nPASS_MAX_DAYS\t90\nUMASK 027\n\nPASS_MAX_DAYS 60\n")
    lines = probe("file_content", path=str(config), pattern="^PASS")
    assert lines == {"exists": True, "lines": ["PASS_MAX_DAYS\t90", "PASS_MAX_DAYS 60"], "match_count": 2}
