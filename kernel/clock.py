"""The one place that says which clock the domain counts in.

The guide's deadlines (PART-8: 1-2 working days) and ages (Q2: 年满16周岁) are counted on the
calendar of Changzhou, Asia/Shanghai, whatever zone the machine runs in.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The calendar day in Changzhou at `moment` (an aware datetime)."""
    return moment.astimezone(SHANGHAI).date()


def today_in_changzhou() -> date:
    return local_date(utc_now())
