"""Age rules of guide Q2 and the 2024 gradual retirement schedule, at their boundaries."""

from datetime import date, timedelta

import pytest

from kernel.problems import Refused
from services.enrollment.ages import Gender, add_months, gradual_delay_months, reaches_age_on, upper_limit
from services.enrollment.rules import AgePolicy, check_age

GUIDE = AgePolicy(16, "guide")
GRADUAL = AgePolicy(16, "gradual_2025")


def eligible(birth: date, gender: Gender, today: date, policy: AgePolicy = GUIDE) -> bool:
    try:
        check_age(birth, gender, today, policy)
    except Refused as refused:
        assert refused.code == "not_eligible_age"
        return False
    return True


@pytest.mark.parametrize("gender", ["male", "female"])
def test_sixteen_is_reached_on_the_sixteenth_birthday(gender: Gender) -> None:
    birth = date(2009, 6, 15)
    assert not eligible(birth, gender, date(2025, 6, 14))
    assert eligible(birth, gender, date(2025, 6, 15))


def test_a_man_may_apply_the_day_before_his_sixtieth_birthday_but_not_on_it() -> None:
    birth = date(1964, 6, 15)
    assert eligible(birth, "male", date(2024, 6, 14))
    assert not eligible(birth, "male", date(2024, 6, 15))


def test_a_woman_may_apply_the_day_before_her_fifty_fifth_birthday_but_not_on_it() -> None:
    birth = date(1969, 6, 15)
    assert eligible(birth, "female", date(2024, 6, 14))
    assert not eligible(birth, "female", date(2024, 6, 15))
    assert eligible(birth, "male", date(2024, 6, 15))  # the limit depends on gender


def test_a_february_29_birthday_is_reached_on_march_1_in_a_common_year() -> None:
    birth = date(1968, 2, 29)  # 55 in 2023, which has no 29 February
    assert reaches_age_on(birth, 55) == date(2023, 3, 1)
    assert eligible(birth, "female", date(2023, 2, 28))
    assert not eligible(birth, "female", date(2023, 3, 1))
    assert reaches_age_on(date(2008, 2, 29), 16) == date(2024, 2, 29)  # a leap year keeps the day


def test_a_day_the_target_month_lacks_rolls_to_the_first_of_the_next_month() -> None:
    assert add_months(date(1965, 3, 31), 60 * 12 + 1) == date(2025, 5, 1)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 3, 1)
    assert add_months(date(2025, 1, 15), 1) == date(2025, 2, 15)


def test_gradual_mode_a_man_born_1965_03_10_retires_at_60_years_1_month() -> None:
    birth = date(1965, 3, 10)
    assert upper_limit(birth, "male", "gradual_2025").label() == "60周岁1个月"
    assert not eligible(birth, "male", date(2025, 3, 10), GUIDE)
    assert eligible(birth, "male", date(2025, 3, 10), GRADUAL)
    assert eligible(birth, "male", date(2025, 4, 9), GRADUAL)
    assert not eligible(birth, "male", date(2025, 4, 10), GRADUAL)


def test_gradual_mode_a_woman_born_1981_09_retires_at_58() -> None:
    birth = date(1981, 9, 20)
    limit_day = date(2039, 9, 20)
    assert eligible(birth, "female", limit_day - timedelta(days=1), GRADUAL)
    assert not eligible(birth, "female", limit_day, GRADUAL)


@pytest.mark.parametrize(
    ("gender", "birth", "months"),
    [
        ("male", date(1964, 12, 31), 0),
        ("male", date(1965, 1, 1), 1),
        ("male", date(1965, 4, 30), 1),
        ("male", date(1965, 5, 1), 2),
        ("male", date(1976, 8, 31), 35),
        ("male", date(1976, 9, 1), 36),
        ("male", date(1990, 1, 1), 36),
        ("female", date(1969, 12, 31), 0),
        ("female", date(1970, 1, 1), 1),
        ("female", date(1970, 5, 1), 2),
        ("female", date(1981, 8, 1), 35),
        ("female", date(1981, 9, 1), 36),
    ],
)
def test_gradual_delay_follows_the_decisions_tables(gender: Gender, birth: date, months: int) -> None:
    assert gradual_delay_months(birth, gender) == months


def test_the_refusal_says_which_limit_applies() -> None:
    with pytest.raises(Refused) as refused:
        check_age(date(1960, 1, 1), "male", date(2025, 1, 1), GUIDE)
    assert refused.value.code == "not_eligible_age" and "60周岁" in refused.value.detail
