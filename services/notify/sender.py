"""The sender: a background task that texts recorded intents, exactly once per message.

Each round releases messages that waited for their recipient's phone, then lets kernel.effects'
dispatcher claim, look up (after doubt), send and record the due ones (docs in kernel/effects.py).

A round starts when a transaction that made a message due commits (NOTIFY on the schema's channel,
`NotifyService.wake_sender`), as the outbox relay is woken (kernel/relay.py), so a decision is
texted within milliseconds instead of up to a poll interval later (issue 10, item 5); and at least
every `notify_sender_poll_seconds`, for what no transaction announces: retries after their backoff,
expired leases, the sweeps, and any NOTIFY missed while the listening connection was away.
"""

import asyncio
import contextlib

import asyncpg

from kernel import effects
from kernel.logging import get_logger
from services.notify import projections
from services.notify.gateway import SmsChannel, SmsGateway
from services.notify.metrics import SMS_PENDING, SmsMetrics
from services.notify.service import MESSAGES, NotifyService, sender_channel
from services.notify.settings import NotifySettings

log = get_logger(__name__)


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
        self.channel = sender_channel(service.store.schema)
        self._wakeup = asyncio.Event()
        self._listener: asyncpg.pool.PoolConnectionProxy | None = None

    async def run(self) -> None:
        """Rounds for ever: at once again after a full batch, else on NOTIFY or after the poll
        interval. An outage (database away) or a bug in one round must not end the task."""
        try:
            while True:
                await self._listen()
                self._wakeup.clear()  # before the round: a NOTIFY during it starts the next one
                try:
                    handled = await self.run_once()
                except Exception as exc:
                    log.warning("effect_round_failed", effect=MESSAGES.name, error=repr(exc))
                    handled = 0
                if handled < self.policy.batch:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.policy.poll_seconds):
                            await self._wakeup.wait()
        finally:
            await self._unlisten()

    async def _listen(self) -> None:
        """Hold a connection that LISTENs on the channel, taking a new one after it was lost."""
        if self._listening():
            return
        await self._unlisten()
        try:
            listener = await self.pool.acquire()
        except Exception:  # database away: polling goes on, the round logs the outage
            return
        try:
            listener.add_termination_listener(self._on_lost)
            await listener.add_listener(self.channel, self._on_notify)
        except Exception:
            with contextlib.suppress(Exception):
                await self.pool.release(listener)
            return
        self._listener = listener  # what was announced while nobody listened: the next round finds it

    def _listening(self) -> bool:
        try:
            return self._listener is not None and not self._listener.is_closed()
        except asyncpg.InterfaceError:  # the pool took the lost connection back
            return False

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(Exception):
            listener.remove_termination_listener(self._on_lost)
            await listener.remove_listener(self.channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self.pool.release(listener)

    def _on_lost(self, *_: object) -> None:
        """The listening connection died (the pool takes it back): listen again at once."""
        self._listener = None
        self._wakeup.set()

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def run_once(self) -> int:
        """One round: record receipts whose bill became known, release what waited for a phone, send
        what is due. Returns how many were claimed."""
        await self.service.release_receipts(self.pool)
        await self.service.release_awaiting(self.pool)
        claimed = await self.dispatcher.run_once()
        for state, count in (await projections.unfinished_counts(self.pool)).items():
            SMS_PENDING.labels(state).set(count)
        return claimed
