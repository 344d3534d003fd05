"""Working days of mainland China: the official holiday calendar plus local overrides.

Guide PART-8 counts the review deadline in working days (工作日). Public holidays and the
make-up working days around them (调休, often a Saturday or Sunday) come from `chinese_calendar`,
which follows the State Council's yearly notice. The notice for next year appears in November or
December, sometimes before a library release ships it, and a city may declare an extra day off,
so an operator-edited TOML file can add holidays or working days; it wins over the library.
For a year the library does not know yet, Monday to Friday are working days.
"""

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

from kernel.logging import get_logger

log = get_logger(__name__)

# A deadline further away than this means the calendar is broken (e.g. every day a holiday).
_MAX_SEARCH_DAYS = 366


@dataclass(frozen=True)
class WorkingCalendar:
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    _unknown_years: set[int] = field(default_factory=set, compare=False, repr=False)

    def __post_init__(self) -> None:
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(f"days both holiday and working day: {sorted(both)}")

    @classmethod
    def from_file(cls, path: Path | None) -> "WorkingCalendar":
        """Read `holidays = [2026-10-09, …]` and `workdays = [...]` (TOML dates); no file, no overrides."""
        if path is None:
            return cls()
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        unknown = set(raw) - {"holidays", "workdays"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(_dates(raw.get("holidays", []), path), _dates(raw.get("workdays", []), path))

    def is_workday(self, day: date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            self._warn_unknown_year(day.year)
            return day.weekday() < 5

    def add_working_days(self, start: date, count: int) -> date:
        """The `count`-th working day after `start` (`start` itself never counts)."""
        day, found = start, 0
        for _ in range(_MAX_SEARCH_DAYS):
            day += timedelta(days=1)
            found += self.is_workday(day)
            if found == count:
                return day
        raise ValueError(f"no {count} working days within a year after {start}")

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days follow `start` up to `end` included (0 when `end` is not after it)."""
        return sum(self.is_workday(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))

    def _warn_unknown_year(self, year: int) -> None:
        if year not in self._unknown_years:
            self._unknown_years.add(year)
            log.warning("calendar_year_unknown", year=year, fallback="monday_to_friday")


def _dates(values: Iterable[object], path: Path) -> frozenset[date]:
    days = frozenset(values)
    if not all(type(d) is date for d in days):  # a TOML datetime is no day
        raise ValueError(f"{path}: holidays and workdays must be TOML dates like 2026-10-09")
    return days  # type: ignore[return-value]
