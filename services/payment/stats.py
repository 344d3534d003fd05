"""Aggregate reads of the settlement read model (table `payments`) for the operators' dashboard
(issue 12).

Only counts and sums leave this module: no payer, no person, no bill. A settlement is a payment
that paid a bill (`kind` 'settlement'); money for a bill already paid (an overpayment, owed back)
is not one. It counts in the month of Changzhou (Asia/Shanghai) it was paid in (`paid_at`).
Amounts are integer fen: the database sums bigint into numeric, cast back to bigint."""

from datetime import date, datetime, time

from kernel.clock import SHANGHAI
from kernel.db import Executor
from services.payment.domain import Month

_SETTLEMENTS = """
SELECT to_char(paid_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month, channel,
       count(*) AS n, sum(amount_fen)::bigint AS amount_fen
FROM payments
WHERE kind = 'settlement' AND paid_at >= $1 AND paid_at < $2
GROUP BY 1, 2
"""


def start_of(month: Month) -> datetime:
    """The first instant of `month` in Asia/Shanghai."""
    return datetime.combine(date(month.year, month.month, 1), time(), SHANGHAI)


async def settlements(db: Executor, first: Month, last: Month) -> dict[tuple[str, str], tuple[int, int]]:
    """(month 'YYYY-MM', channel) -> (settlements, amount in fen) from `first` to `last`, both included."""
    rows = await db.fetch(_SETTLEMENTS, start_of(first), start_of(last.next()))
    return {(r["month"], r["channel"]): (int(r["n"]), int(r["amount_fen"])) for r in rows}
