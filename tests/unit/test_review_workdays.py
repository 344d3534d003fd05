"""The review deadline in working days: official holidays, make-up days, overrides, unknown years.

Dates checked against chinese_calendar 1.11 (State Council notices for 2025 and 2026).
"""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from kernel.clock import local_date
from services.review.workdays import WorkingCalendar

CAL = WorkingCalendar()


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        # National Day + Mid-Autumn 2025: Oct 1–8 off, so the two days are Thu 9 and Fri 10.
        (date(2025, 9, 30), date(2025, 10, 10)),
        # Friday before: Sat 27 is off, Sun 28 is a make-up working day, then Mon 29.
        (date(2025, 9, 26), date(2025, 9, 29)),
        # Thu Oct 9: Fri 10, then the make-up working Saturday Oct 11.
        (date(2025, 10, 9), date(2025, 10, 11)),
        # Submitted on a holiday: the days after the holiday count.
        (date(2025, 10, 3), date(2025, 10, 10)),
        # Spring Festival 2026: Sat Feb 14 is a make-up day, Feb 15–23 off, Feb 24 back.
        (date(2026, 2, 13), date(2026, 2, 24)),
        (date(2026, 2, 12), date(2026, 2, 14)),
        # Spring Festival 2025: Jan 28–Feb 4 off; Sun Jan 26 make-up day.
        (date(2025, 1, 24), date(2025, 1, 27)),
        (date(2025, 1, 27), date(2025, 2, 6)),
        # An ordinary week.
        (date(2025, 3, 6), date(2025, 3, 10)),
    ],
)
def test_two_working_days_after_submission(submitted: date, due: date) -> None:
    assert CAL.add_working_days(submitted, 2) == due


def test_make_up_saturday_is_a_working_day_and_a_holiday_weekday_is_not() -> None:
    assert CAL.is_workday(date(2025, 10, 11))  # Saturday, 调休
    assert not CAL.is_workday(date(2025, 10, 6))  # Monday, 中秋节
    assert not CAL.is_workday(date(2025, 10, 12))  # ordinary Sunday


def test_the_submission_day_is_the_day_in_changzhou_not_in_utc() -> None:
    # 2025-10-09 16:30 UTC is already Friday Oct 10, 00:30 in Changzhou: due Sat 11 and Mon 13.
    late_evening_utc = datetime(2025, 10, 9, 16, 30, tzinfo=UTC)
    assert local_date(late_evening_utc) == date(2025, 10, 10)
    assert CAL.add_working_days(local_date(late_evening_utc), 2) == date(2025, 10, 13)


def test_override_file_adds_a_holiday_and_a_working_day(tmp_path: Path) -> None:
    overrides = tmp_path / "workdays.toml"
    overrides.write_text("holidays = [2025-10-10]\nworkdays = [2025-10-08]\n", encoding="utf-8")
    cal = WorkingCalendar.from_file(overrides)
    assert not cal.is_workday(date(2025, 10, 10))
    assert cal.is_workday(date(2025, 10, 8))
    assert cal.add_working_days(date(2025, 9, 30), 2) == date(2025, 10, 9)  # Oct 8, Oct 9
    assert cal.add_working_days(date(2025, 10, 8), 2) == date(2025, 10, 11)  # Oct 9, (not 10), Sat 11


def test_override_file_can_stand_in_for_an_unknown_year(tmp_path: Path) -> None:
    overrides = tmp_path / "workdays.toml"
    overrides.write_text("holidays = [2030-01-01]\n", encoding="utf-8")
    cal = WorkingCalendar.from_file(overrides)
    assert cal.add_working_days(date(2029, 12, 31), 2) == date(2030, 1, 3)  # Tue 1 off: Wed 2, Thu 3


def test_years_the_library_does_not_know_fall_back_to_monday_to_friday() -> None:
    assert CAL.add_working_days(date(2030, 1, 4), 2) == date(2030, 1, 8)  # Fri -> Mon 7, Tue 8
    assert CAL.is_workday(date(2030, 1, 1))  # unknown: a Tuesday counts
    assert not CAL.is_workday(date(2030, 1, 5))


def test_the_shipped_override_file_is_valid() -> None:
    shipped = Path(__file__).resolve().parents[2] / "services" / "review" / "workdays.toml"
    assert WorkingCalendar.from_file(shipped) == WorkingCalendar()


@pytest.mark.parametrize(
    "content",
    ['holidays = ["2025-10-10"]', "holiday = [2025-10-10]", "holidays = [2025-10-10]\nworkdays = [2025-10-10]"],
)
def test_a_broken_override_file_is_refused(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "workdays.toml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError):
        WorkingCalendar.from_file(bad)


def test_working_days_between_never_count_the_start_and_follow_the_overrides() -> None:
    friday, monday, tuesday = date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 10)
    plain = WorkingCalendar()
    assert plain.working_days_between(friday, tuesday) == 2
    assert plain.working_days_between(friday, monday) == 1
    assert plain.working_days_between(tuesday, friday) == 0 and plain.working_days_between(friday, friday) == 0
    # A local holiday (workdays.toml) counts as none; a made-up Saturday counts as one.
    local = WorkingCalendar(extra_holidays=frozenset({monday}), extra_workdays=frozenset({date(2026, 3, 7)}))
    assert local.working_days_between(friday, tuesday) == 2
    assert plain.working_days_between(date(2024, 9, 30), date(2024, 10, 8)) == 1  # 国庆节, then 10-08
