"""The key_value_file probe on a file written for the test."""

from __future__ import annotations

from pathlib import Path

from tests.checks.probes.live import probe


def test_key_values_last_wins_and_octal_stays_text(tmp_path: Path) -> None:
    config = tmp_path / "login.defs"
    config.write_text("# comment\nPASS_MAX_DAYS\t90\nUMASK 027\n\nPASS_MAX_DAYS 60\n")
    kv = probe("key_value_file", path=str(config))
    assert kv["settings"] == {"pass_max_days": "60", "umask": "027"}
    assert kv["numbers"] == {"pass_max_days": 60}  # 027 stays text: a leading zero is octal
