"""Quarters of the financial year (collector.briefing.year_starts) and the period each is compared with."""

from __future__ import annotations

import datetime as dt

import pytest

from collector.reports.periods import PeriodError, choose, date_range, month_number, quarter, quarter_containing


def test_quarters_count_from_april_by_default_and_roll_over_the_year() -> None:
    q3 = quarter("2026-Q3")
    assert (q3.start, q3.end) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert q3.long_label == "2026-Q3 (1 October 2026 to 31 December 2026)"
    q4 = quarter("2026-Q4")
    assert (q4.start, q4.end) == (dt.date(2027, 1, 1), dt.date(2027, 3, 31))
    assert quarter("2026-Q1").previous().label == "2025-Q4"
    assert q4.following().label == "2027-Q1"
    assert quarter_containing(dt.date(2027, 3, 31)).label == "2026-Q4"
    assert quarter_containing(dt.date(2026, 4, 1)).label == "2026-Q1"


def test_another_year_start_and_ranges() -> None:
    january = month_number("January")
    assert january == 1 and month_number("jul") == 7 and month_number("10") == 10
    assert (quarter("2026-Q3", january).start, quarter("2026-Q3", january).end) == (
        dt.date(2026, 7, 1),
        dt.date(2026, 9, 30),
    )
    span = date_range(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert (span.previous().start, span.previous().end) == (dt.date(2026, 1, 29), dt.date(2026, 2, 28))
    assert choose(quarter_label=None, start=None, end=None, today=dt.date(2026, 5, 2), year_starts=4).label == "2026-Q1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quarter_label": "2026-Q5"}, "YYYY-QN"),
        ({"quarter_label": "2026-Q1", "start": dt.date(2026, 1, 1)}, "not both"),
        ({"start": dt.date(2026, 1, 1)}, "both the start and the end"),
        ({"start": dt.date(2026, 2, 1), "end": dt.date(2026, 1, 1)}, "before it starts"),
    ],
)
def test_bad_periods_say_what_to_give(kwargs: dict[str, object], message: str) -> None:
    arguments = {"quarter_label": None, "start": None, "end": None, **kwargs}
    with pytest.raises(PeriodError, match=message):
        choose(today=dt.date(2026, 5, 1), year_starts=4, **arguments)  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="year_starts must be a month"):
        month_number("Smarch")
