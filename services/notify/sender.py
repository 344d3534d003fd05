"""The sender: a background task that texts recorded intents, exactly once per message.

Each round releases messages that waited for their recipient's phone, then lets kernel.effects'
dispatcher claim, look up (after doubt), send and record the due ones (docs in kernel/effects.py).
"""

import asyncpg

from kernel import effects
from services.notify import projections
from services.notify.gateway import SmsChannel, SmsGateway
from services.notify.metrics import SMS_PENDING, SmsMetrics
from services.notify.service import MESSAGES, NotifyService
from services.notify.settings import NotifySettings


def policy(settings: NotifySettings) -> effects.Policy:
    return effects.Policy(
        batch=settings.notify_sender_batch,
        poll_seconds=settings.notify_sender_poll_seconds,
        max_attempts=settings.notify_max_send_attempts,
        backoff_seconds=settings.notify_retry_backoff_seconds,
        call_timeout_seconds=settings.notify_send_timeout_seconds,
        lease_seconds=settings.notify_sending_lease_seconds,
    )


class Sender:
    def __init__(
        self, pool: asyncpg.Pool, service: NotifyService, gateway: SmsGateway, settings: NotifySettings
    ) -> None:
        self.pool = pool
        self.service = service
        self.policy = policy(settings)
        # The dispatcher keeps real time (retry times, sent_at); the service's clock is the replay
        # guard's `now`, which tests move.
        self.dispatcher = effects.Dispatcher(
            pool, MESSAGES, SmsChannel(gateway), self.policy, on_final=service.record_final, observer=SmsMetrics()
        )

    async def run(self) -> None:
        await effects.poll_forever(self.run_once, self.policy, MESSAGES.name)

    async def run_once(self) -> int:
        """One round: record receipts whose bill became known, release what waited for a phone, send
        what is due. Returns how many were claimed."""
        await self.service.release_receipts(self.pool)
        await self.service.release_awaiting(self.pool)
        claimed = await self.dispatcher.run_once()
        for state, count in (await projections.unfinished_counts(self.pool)).items():
            SMS_PENDING.labels(state).set(count)
        return claimed
