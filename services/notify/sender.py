"""The sender: a background task that texts recorded intents, exactly once per message.

Per message: claim it (`sending`, attempt counted, COMMITTED), then — if an earlier attempt may
have reached the provider — ask the provider whether this out-id was already sent, and only
if not, send; finally record the outcome with its event in one transaction. A crash anywhere
leaves either `pending` (nothing sent) or `sending` (maybe sent), and `sending` is always
looked up before a new send.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from kernel.eventstore import EventStore
from kernel.logging import get_logger
from services.notify import domain, projections, service
from services.notify.domain import Next, SendResult
from services.notify.gateway import SmsGateway
from services.notify.metrics import SMS_FAILED, SMS_LOOKUPS, SMS_PENDING, SMS_SENT
from services.notify.service import Claimed
from services.notify.settings import NotifySettings

log = get_logger(__name__)


class Sender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        gateway: SmsGateway,
        settings: NotifySettings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.gateway = gateway
        self.settings = settings
        self.clock = clock or _now  # the replay guard's `now` (tests set it)

    async def run(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:  # database away, or a bug: the task must outlive either
                log.warning("sms_sender_retry", error=repr(exc))
                handled = 0
            if handled < self.settings.sender_batch:
                await asyncio.sleep(self.settings.sender_poll_seconds)

    async def run_once(self) -> int:
        """One round: release what waited for a phone, send what is due. Returns how many."""
        await projections.release_awaiting(self.pool, self.clock(), self.settings.max_decision_age)
        claimed = await service.claim_due(self.pool, self.settings.sender_batch, self.settings.sending_lease_seconds)
        # Concurrently, so that every claimed message finishes well within its lease.
        outcomes = await asyncio.gather(*(self.deliver(sms) for sms in claimed), return_exceptions=True)
        for sms, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # left in `sending`: retried, looked up first
                log.warning("sms_delivery_error", sms_id=str(sms.sms_id), error=repr(outcome))
        await self._update_gauge()
        return len(claimed)

    async def deliver(self, sms: Claimed) -> None:
        if sms.uncertain:
            settled = await self._settle_doubt(sms)
            if settled is not None:
                await self._record(sms, settled)
                return
        if sms.attempts > self.settings.max_send_attempts:
            # Reached only after an uncertain last attempt that the provider says did not arrive.
            await self._record(sms, Next("failed", error_code="max_attempts_reached"))
            return
        result, error = await self._send(sms)
        outcome = domain.after_attempt(
            result, error, sms.attempts, self.settings.max_send_attempts, _now(), self.settings.retry_backoff_seconds
        )
        await self._record(sms, outcome)

    async def _settle_doubt(self, sms: Claimed) -> Next | None:
        """An earlier attempt may have reached the provider: ask it. `sent` if it has the out-id;
        None if it says no (send now); stay pending and uncertain if it cannot say."""
        try:
            for day in domain.lookup_dates(sms.first_attempt_at, sms.last_attempt_at):
                found = await asyncio.wait_for(
                    self.gateway.lookup(sms.phone, sms.out_id, day), self.settings.send_timeout_seconds
                )
                if found is not None:
                    SMS_LOOKUPS.labels("found").inc()
                    log.info("sms_found_by_lookup", sms_id=str(sms.sms_id), attempts=sms.attempts)
                    return Next("sent", message_id=found.message_id)
        except Exception as exc:
            SMS_LOOKUPS.labels("error").inc()
            log.warning("sms_lookup_failed", sms_id=str(sms.sms_id), error=type(exc).__name__)
            retry_at = _now() + domain.retry_delay(sms.attempts, self.settings.retry_backoff_seconds)
            return Next("pending", uncertain=True, error_code="lookup_failed", retry_at=retry_at)
        SMS_LOOKUPS.labels("not_found").inc()
        return None

    async def _send(self, sms: Claimed) -> tuple[SendResult | None, str]:
        """The gateway's answer, or None with a reason when the outcome is unknown."""
        try:
            result = await asyncio.wait_for(
                self.gateway.send(sms.phone, sms.template, sms.params, sms.out_id), self.settings.send_timeout_seconds
            )
        except Exception as exc:
            log.warning("sms_outcome_unknown", sms_id=str(sms.sms_id), error=type(exc).__name__)
            return None, "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return result, ""

    async def _record(self, sms: Claimed, outcome: Next) -> None:
        if not await service.finish(self.pool, self.store, sms, outcome, self.gateway.name, _now()):
            log.warning("sms_lease_lost", sms_id=str(sms.sms_id), attempts=sms.attempts)
            return
        if outcome.state == "sent":
            SMS_SENT.labels(self.gateway.name).inc()
        elif outcome.state == "failed":
            SMS_FAILED.labels(self.gateway.name, outcome.error_code or "unknown_error").inc()
        log.info(
            "sms_attempt_recorded",
            sms_id=str(sms.sms_id),
            state=outcome.state,
            attempts=sms.attempts,
            error_code=outcome.error_code,
        )

    async def _update_gauge(self) -> None:
        for state, count in (await service.unfinished_counts(self.pool)).items():
            SMS_PENDING.labels(state).set(count)


def _now() -> datetime:
    return datetime.now(UTC)
