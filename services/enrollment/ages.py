"""Ages and the upper age limit for applying (guide Q2), pure date arithmetic.

Guide Q2: "年满16周岁，且男未满60周岁、女未满55周岁". "年满N周岁" is reached ON the N-th
birthday: a 16-year-old may apply on the 16th birthday, a man may no longer apply on his 60th.

Birthdays on 29 February: in a year without that day, the age is reached on 1 March (the day
after 28 February), the reading used for 周岁 in Chinese civil practice. The same rule applies
to any day a target month lacks (born on the 31st, the limit falls in a 30-day month): the
age is reached on the first day of the next month.

Gradual retirement (mode `gradual_2025`): 《全国人民代表大会常务委员会关于实施渐进式延迟法定
退休年龄的决定》 (adopted 2024-09-13, in force 2025-01-01), annex 《国务院关于渐进式延迟职工
法定退休年龄的办法》 and its tables:
- 附件1 (男职工, originally 60): born 1965-01 or later, one month later for every four months
  of birth (1965-01..1965-04 → 60岁1个月, …), at most 36 months: born 1976-09 or later → 63岁.
- 附件2 (原法定退休年龄55周岁的女职工): born 1970-01 or later, likewise one month per four
  months of birth, at most 36 months: born 1981-09 or later → 58岁.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Gender = Literal["male", "female"]
Mode = Literal["guide", "gradual_2025"]

GUIDE_LIMIT_YEARS: dict[Gender, int] = {"male": 60, "female": 55}
# First birth year affected by the gradual schedule, per original retirement age.
_GRADUAL_FROM_YEAR: dict[Gender, int] = {"male": 1965, "female": 1970}
_BIRTH_MONTHS_PER_STEP = 4
_MAX_DELAY_MONTHS = 36


def add_months(start: date, months: int) -> date:
    """`start` plus whole months; a day the target month lacks rolls to the next month's 1st."""
    year, month0 = divmod(start.year * 12 + (start.month - 1) + months, 12)
    if start.day <= calendar.monthrange(year, month0 + 1)[1]:
        return date(year, month0 + 1, start.day)
    return date(year, month0 + 1, calendar.monthrange(year, month0 + 1)[1]) + timedelta(days=1)


def reaches_age_on(birth: date, years: int, extra_months: int = 0) -> date:
    """The day on which someone born on `birth` reaches `years` years and `extra_months` months."""
    return add_months(birth, years * 12 + extra_months)


def has_reached(birth: date, today: date, years: int, extra_months: int = 0) -> bool:
    return today >= reaches_age_on(birth, years, extra_months)


def gradual_delay_months(birth: date, gender: Gender) -> int:
    """Months added to the original retirement age by the 2024 decision's tables (附件1/附件2)."""
    months_since_start = (birth.year - _GRADUAL_FROM_YEAR[gender]) * 12 + (birth.month - 1)
    if months_since_start < 0:
        return 0
    return min(_MAX_DELAY_MONTHS, months_since_start // _BIRTH_MONTHS_PER_STEP + 1)


@dataclass(frozen=True)
class AgeLimit:
    years: int
    months: int = 0

    def label(self) -> str:
        return f"{self.years}周岁" + (f"{self.months}个月" if self.months else "")


def upper_limit(birth: date, gender: Gender, mode: Mode) -> AgeLimit:
    """The age from which one may no longer apply: the (possibly delayed) retirement age."""
    base = GUIDE_LIMIT_YEARS[gender]
    if mode == "guide":
        return AgeLimit(base)
    delay = gradual_delay_months(birth, gender)
    return AgeLimit(base + delay // 12, delay % 12)
