"""Periods a briefing covers: quarters of the organisation's financial year, or any range of days.

Quarters count from `collector.briefing.year_starts` (default April, as UK councils count): with April,
"2026-Q1" is 1 April to 30 June 2026 and "2026-Q4" is January to March 2027; the year in the label is the
calendar year the financial year starts in. A period is compared with the one before it: the previous
quarter, or for a range the same number of days just before it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.I)
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr) if name})


class PeriodError(ValueError):
    """A period that cannot be used; the message says what to give instead."""


def month_number(text: str | int) -> int:
    """`april`, `Apr` or `4` -> 4."""
    value = str(text).strip().lower()
    if value.isdigit() and 1 <= int(value) <= 12:
        return int(value)
    if value in _MONTHS:
        return _MONTHS[value]
    raise PeriodError(f"year_starts must be a month (a name or 1-12), got {text!r}")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    label: str
    quarter: tuple[int, int] | None = None  # (financial year, quarter) for quarters
    year_starts: int = 4

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def long_label(self) -> str:
        span = f"{self.start.day} {self.start:%B %Y} to {self.end.day} {self.end:%B %Y}"
        return f"{self.label} ({span})" if self.quarter else span

    def previous(self) -> Period:
        if self.quarter:
            year, number = self.quarter
            return quarter(f"{year - 1}-Q4" if number == 1 else f"{year}-Q{number - 1}", self.year_starts)
        end = self.start - dt.timedelta(days=1)
        return date_range(end - dt.timedelta(days=self.days - 1), end)

    def following(self) -> Period:
        if self.quarter:
            year, number = self.quarter
            return quarter(f"{year + 1}-Q1" if number == 4 else f"{year}-Q{number + 1}", self.year_starts)
        start = self.end + dt.timedelta(days=1)
        return date_range(start, start + dt.timedelta(days=self.days - 1))


def quarter(label: str, year_starts: int = 4) -> Period:
    """A quarter of the financial year, e.g. "2026-Q3"."""
    match = _QUARTER.match(label.strip())
    if not match:
        raise PeriodError(f"a quarter is written YYYY-QN, e.g. 2026-Q3; got {label!r}")
    year, number = int(match.group(1)), int(match.group(2))
    start = _add_months(dt.date(year, year_starts, 1), 3 * (number - 1))
    end = _add_months(start, 3) - dt.timedelta(days=1)
    return Period(start, end, f"{year}-Q{number}", (year, number), year_starts)


def quarter_containing(day: dt.date, year_starts: int = 4) -> Period:
    months = (day.year * 12 + day.month - 1) - (day.year * 12 + year_starts - 1)
    year = day.year if months >= 0 else day.year - 1
    number = (months % 12) // 3 + 1
    return quarter(f"{year}-Q{number}", year_starts)


def date_range(start: dt.date, end: dt.date) -> Period:
    if end < start:
        raise PeriodError(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return Period(start, end, f"{start.isoformat()} to {end.isoformat()}")


def choose(
    *, quarter_label: str | None, start: dt.date | None, end: dt.date | None, today: dt.date, year_starts: int
) -> Period:
    """The period a command or request asks for: a quarter, a range, or (neither) the quarter today is in."""
    if quarter_label and (start or end):
        raise PeriodError("give either a quarter or --from/--to, not both")
    if quarter_label:
        return quarter(quarter_label, year_starts)
    if start or end:
        if not (start and end):
            raise PeriodError("give both the start and the end of the period (--from and --to)")
        return date_range(start, end)
    return quarter_containing(today, year_starts)
