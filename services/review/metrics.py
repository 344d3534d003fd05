"""The review queue in Prometheus: pending and overdue cases per agency.

Overdue turns true with the calendar, not with an event, so the gauges are recomputed from the
case table on a timer rather than moved by the handlers.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Gauge

from kernel.clock import today_in_changzhou
from kernel.logging import get_logger
from services.review.service import ReviewService

log = get_logger(__name__)

CASES_PENDING = Gauge("flexenroll_review_cases_pending", "Review cases awaiting a decision", ["agency"])
CASES_OVERDUE = Gauge(
    "flexenroll_review_cases_overdue", "Pending review cases past their working-day due date", ["agency"]
)


async def refresh_queue_gauges(service: ReviewService) -> None:
    counts = await service.queue_counts(today_in_changzhou())
    # Every configured agency gets a value, 0 included, so an alert on "> 0" also sees recovery.
    for code in {a.code for a in service.rules.districts.agencies} | set(counts):
        pending, overdue = counts.get(code, (0, 0))
        CASES_PENDING.labels(code).set(pending)
        CASES_OVERDUE.labels(code).set(overdue)


def queue_gauges_job(service: ReviewService, every_seconds: float) -> Callable[[Any], Awaitable[None]]:
    """A runtime background job: refresh now, then every `every_seconds`, surviving outages."""

    async def refresh_review_queue_gauges(_: Any) -> None:
        while True:
            try:
                await refresh_queue_gauges(service)
            except Exception as exc:  # database away: keep the last values, try again later
                log.warning("review_gauges_not_refreshed", error=repr(exc))
            await asyncio.sleep(every_seconds)

    return refresh_review_queue_gauges
