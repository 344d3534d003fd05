"""The one place that says which clock the domain counts in.

The guide's deadlines (PART-8: 1-2 working days) and ages (Q2: 年满16周岁) are counted on the
calendar of Changzhou, Asia/Shanghai, whatever zone the machine runs in.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The calendar day in Changzhou at `moment` (an aware datetime)."""
    return moment.astimezone(SHANGHAI).date()


def today_in_changzhou() -> date:
    return local_date(utc_now())


@dataclass(frozen=True)
class CalendarWindow:
    """The last `days` calendar days of Changzhou up to `today`, both included (the dashboard's
    figures per day: services/*/stats.py)."""

    today: date
    days: int

    @property
    def first_day(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    def all_days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) of the window as instants: local midnights in Asia/Shanghai."""
        start = datetime.combine(self.first_day, time(), SHANGHAI)
        end = datetime.combine(self.today + timedelta(days=1), time(), SHANGHAI)
        return start, end
