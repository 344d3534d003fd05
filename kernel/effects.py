"""Outbound effects exactly once: a text message, a bank collection request, any call to a provider
that must happen once per decision although processes die and networks time out.

The machine, per effect (one row of a service's own table):
  claim    `pending` (due) or `sending` past its lease -> `sending`, attempt counted, COMMITTED
           before the provider is called; a takeover of `sending` marks the row `uncertain`
  settle   if `uncertain`, an earlier attempt may have reached the provider: ask it by the
           effect's out id (`Gateway.lookup`) and never send again while it cannot say
  send     `Gateway.send`; no answer (exception, timeout) leaves the row `uncertain`
  record   `sent` | `failed` | `pending` (retry later), guarded by (state = 'sending', attempts)
           so that a dispatcher that lost its lease records nothing; a final outcome's event is
           appended in the same transaction (`OnFinal`)
A crash anywhere leaves `pending` (nothing sent) or `sending` (maybe sent, looked up first).

The provider must not de-duplicate for this to hold, and may not: the lookup does the work.

The table belongs to the service (its migration creates it) and has these columns besides its
own: state text ('pending', 'sending', 'sent', 'failed' and any states of the service's own that
this machine never touches), uncertain boolean, attempts integer, next_attempt_at timestamptz,
sending_since, first_attempt_at, last_attempt_at, sent_at, failed_at, updated_at timestamptz,
provider text, provider_ref text (the provider's id of what it accepted), last_error text.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

import asyncpg

from kernel.clock import utc_now
from kernel.db import Connection
from kernel.logging import get_logger

log = get_logger(__name__)

E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)

MAX_RETRY_DELAY = timedelta(hours=1)

# --- pure decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What a provider said. A call that said nothing (timeout, crash) has no SendResult."""

    status: Literal["accepted", "retryable", "permanent"]
    reference: str | None = None  # the provider's id of what it accepted (Aliyun BizId, a bank's serial)
    error_code: str | None = None

    @classmethod
    def accepted(cls, reference: str | None) -> "SendResult":
        return cls("accepted", reference=reference)

    @classmethod
    def refused(cls, error_code: str, *, retryable: bool) -> "SendResult":
        return cls("retryable" if retryable else "permanent", error_code=error_code)


@dataclass(frozen=True)
class Next:
    """What to record after an attempt: `sent` and `failed` are final."""

    state: Literal["sent", "failed", "pending"]
    uncertain: bool = False
    reference: str | None = None
    error_code: str | None = None
    retry_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.state != "pending"


def retry_delay(attempts: int, backoff_seconds: float) -> timedelta:
    """`backoff_seconds` after the first attempt, doubled after each further one, at most an hour."""
    return min(timedelta(seconds=backoff_seconds * 2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def after_attempt(
    result: SendResult | None, error: str, attempts: int, max_attempts: int, now: datetime, backoff_seconds: float
) -> Next:
    """`result` None means the outcome is unknown (`error` says why): the effect may have happened,
    so it is never given up blindly; the next try asks the provider first."""
    retry_at = now + retry_delay(attempts, backoff_seconds)
    if result is None:
        return Next("pending", uncertain=True, error_code=error, retry_at=retry_at)
    if result.status == "accepted":
        return Next("sent", reference=result.reference)
    code = result.error_code or "unknown_error"
    if result.status == "permanent" or attempts >= max_attempts:
        return Next("failed", error_code=code)
    return Next("pending", error_code=code, retry_at=retry_at)


def after_lookup(found: SendResult | None) -> Next | None:
    """What the provider's record of an earlier attempt settles; None: it has no such attempt, or
    refused it retryably, so sending (again) cannot duplicate anything."""
    if found is None or found.status == "retryable":
        return None
    if found.status == "accepted":
        return Next("sent", reference=found.reference)
    return Next("failed", error_code=found.error_code or "unknown_error")


def lookup_failed(attempts: int, now: datetime, backoff_seconds: float) -> Next:
    """The provider cannot say whether it has the effect: send nothing, stay in doubt, ask later."""
    retry_at = now + retry_delay(attempts, backoff_seconds)
    return Next("pending", uncertain=True, error_code="lookup_failed", retry_at=retry_at)


def out_of_attempts(attempts: int, max_attempts: int) -> Next | None:
    """Past the last attempt (reached only when the provider said an uncertain one did not arrive)."""
    return Next("failed", error_code="max_attempts_reached") if attempts > max_attempts else None


# --- the provider and the table ----------------------------------------------------------------


class Gateway(Protocol[E_contra]):
    """A provider of one kind of effect. It need not de-duplicate by out id: the machine does."""

    @property
    def name(self) -> str: ...

    async def send(self, effect: E_contra) -> SendResult:
        """Hand the effect (with its out id) to the provider. Raises, or times out, when the
        outcome is unknown; returns a refusal only when the provider definitely did nothing."""
        ...

    async def lookup(self, effect: E_contra, since: datetime, until: datetime) -> SendResult | None:
        """What the provider holds under the effect's out id from attempts between `since` and
        `until` (a provider searchable only by day asks each day). None: definitely nothing.
        Raises when it cannot say."""
        ...


@dataclass(frozen=True)
class Claim(Generic[E]):
    """An effect a dispatcher now holds in `sending`; `attempts` counts this attempt too."""

    key: Any
    effect: E
    attempts: int
    uncertain: bool
    first_attempt_at: datetime
    last_attempt_at: datetime


# The service's own record of a final outcome (e.g. appending SmsSent), in the transaction that
# records it: (conn, claim, outcome, provider name, now).
OnFinal = Callable[[Connection, Claim[E], Next, str, datetime], Awaitable[None]]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


class EffectTable(Generic[E]):
    """The machine's SQL over a service's table; `load` builds the effect from a claimed row."""

    def __init__(self, table: str, key: str, load: Callable[[asyncpg.Record], E]) -> None:
        self.name = table
        self.load = load
        t, k = _identifier(table), _identifier(key)
        # SKIP LOCKED lets several dispatchers share the work; the UPDATE commits before any call.
        self._claim = f"""
            WITH due AS (
                SELECT {k} FROM {t}
                WHERE (state = 'pending' AND next_attempt_at <= now())
                   OR (state = 'sending' AND sending_since < now() - make_interval(secs => $2))
                ORDER BY next_attempt_at LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {t} AS eff
            SET uncertain = eff.uncertain OR eff.state = 'sending',
                state = 'sending', attempts = eff.attempts + 1, sending_since = now(),
                first_attempt_at = coalesce(eff.first_attempt_at, now()), last_attempt_at = now(),
                updated_at = now()
            FROM due WHERE eff.{k} = due.{k}
            RETURNING eff.*"""
        self._finish = f"""
            UPDATE {t}
            SET state = $3, uncertain = $4, provider = $5,
                provider_ref = coalesce($6, provider_ref), last_error = coalesce($7, last_error),
                next_attempt_at = coalesce($8, next_attempt_at), sending_since = NULL,
                sent_at = CASE WHEN $3 = 'sent' THEN $9::timestamptz END,
                failed_at = CASE WHEN $3 = 'failed' THEN $9::timestamptz END,
                updated_at = $9
            WHERE {k} = $1 AND state = 'sending' AND attempts = $2"""
        self._key = key

    async def claim_due(self, pool: asyncpg.Pool, limit: int, lease_seconds: float) -> list[Claim[E]]:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(self._claim, limit, lease_seconds)
        return [self._claimed(row) for row in rows]

    def _claimed(self, row: asyncpg.Record) -> Claim[E]:
        return Claim(
            key=row[self._key],
            effect=self.load(row),
            attempts=row["attempts"],
            uncertain=row["uncertain"],
            first_attempt_at=row["first_attempt_at"],
            last_attempt_at=row["last_attempt_at"],
        )

    async def finish(
        self,
        pool: asyncpg.Pool,
        claim: Claim[E],
        outcome: Next,
        provider: str,
        now: datetime,
        on_final: OnFinal[E] | None = None,
    ) -> bool:
        """Record an attempt's outcome and, when final, `on_final`, in one transaction. False when
        the row is no longer this claim's (its lease ran out and another dispatcher took it)."""
        async with pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                self._finish,
                claim.key,
                claim.attempts,
                outcome.state,
                outcome.uncertain,
                provider,
                outcome.reference,
                outcome.error_code,
                outcome.retry_at,
                now,
            )
            if status != "UPDATE 1":
                return False
            if outcome.final and on_final is not None:
                await on_final(conn, claim, outcome, provider, now)
        return True


# --- the dispatcher ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    batch: int = 20
    poll_seconds: float = 1.0
    max_attempts: int = 5
    backoff_seconds: float = 5.0
    call_timeout_seconds: float = 10.0
    # A `sending` row older than this belongs to a dispatcher that died. It must outlast a lookup,
    # a send and the recording, or a live dispatcher's work would be taken over.
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        check_lease(self.lease_seconds, self.call_timeout_seconds)


def check_lease(lease_seconds: float, call_timeout_seconds: float) -> None:
    """The one rule for a lease (a service's settings check it at start too)."""
    if lease_seconds < 3 * call_timeout_seconds:
        raise ValueError("the lease must be at least 3 x the call timeout (a lookup, a send and the record)")


LookupOutcome = Literal["found", "not_found", "error"]


class Observer(Generic[E]):
    """Counts and logs of a service's own (metrics); every method is a no-op here."""

    def looked_up(self, claim: Claim[E], outcome: LookupOutcome) -> None:
        return None

    def recorded(self, claim: Claim[E], outcome: Next, provider: str) -> None:
        return None


class Dispatcher(Generic[E]):
    """Claims due effects, settles doubt by lookup, sends, records. Several may run at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        table: EffectTable[E],
        gateway: Gateway[E],
        policy: Policy,
        on_final: OnFinal[E] | None = None,
        observer: Observer[E] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.pool, self.table, self.gateway, self.policy = pool, table, gateway, policy
        self.on_final = on_final
        self.observer = observer or Observer()
        self.clock = clock

    async def run(self) -> None:
        await poll_forever(self.run_once, self.policy, self.table.name)

    async def run_once(self) -> int:
        """One round: claim a batch and deliver it. Returns how many were claimed."""
        claimed = await self.table.claim_due(self.pool, self.policy.batch, self.policy.lease_seconds)
        # Concurrently, so that every claimed effect finishes well within its lease.
        results = await asyncio.gather(*(self.deliver(claim) for claim in claimed), return_exceptions=True)
        for claim, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):  # left in `sending`: taken over, looked up first
                log.warning("effect_delivery_error", effect=self.table.name, key=str(claim.key), error=repr(result))
        return len(claimed)

    async def deliver(self, claim: Claim[E]) -> bool:
        """Settle, send if needed, record. False when the lease was lost (nothing recorded)."""
        if claim.uncertain:
            settled = await self._settle_doubt(claim)
            if settled is not None:
                return await self._record(claim, settled)
        given_up = out_of_attempts(claim.attempts, self.policy.max_attempts)
        if given_up is not None:
            return await self._record(claim, given_up)
        result, error = await self._send(claim)
        p = self.policy
        return await self._record(
            claim, after_attempt(result, error, claim.attempts, p.max_attempts, self.clock(), p.backoff_seconds)
        )

    async def _settle_doubt(self, claim: Claim[E]) -> Next | None:
        try:
            async with asyncio.timeout(self.policy.call_timeout_seconds):
                found = await self.gateway.lookup(claim.effect, claim.first_attempt_at, claim.last_attempt_at)
        except Exception as exc:
            self.observer.looked_up(claim, "error")
            log.warning("effect_lookup_failed", effect=self.table.name, key=str(claim.key), error=type(exc).__name__)
            return lookup_failed(claim.attempts, self.clock(), self.policy.backoff_seconds)
        self.observer.looked_up(claim, "not_found" if found is None else "found")
        if found is not None:
            log.info("effect_found_by_lookup", effect=self.table.name, key=str(claim.key), status=found.status)
        return after_lookup(found)

    async def _send(self, claim: Claim[E]) -> tuple[SendResult | None, str]:
        """The provider's answer, or None with a reason when the outcome is unknown."""
        try:
            async with asyncio.timeout(self.policy.call_timeout_seconds):
                result = await self.gateway.send(claim.effect)
        except Exception as exc:
            log.warning("effect_outcome_unknown", effect=self.table.name, key=str(claim.key), error=type(exc).__name__)
            return None, "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return result, ""

    async def _record(self, claim: Claim[E], outcome: Next) -> bool:
        provider = self.gateway.name
        if not await self.table.finish(self.pool, claim, outcome, provider, self.clock(), self.on_final):
            log.warning("effect_lease_lost", effect=self.table.name, key=str(claim.key), attempts=claim.attempts)
            return False
        self.observer.recorded(claim, outcome, provider)
        log.info(
            "effect_attempt_recorded",
            effect=self.table.name,
            key=str(claim.key),
            state=outcome.state,
            attempts=claim.attempts,
            error_code=outcome.error_code,
        )
        return True


async def poll_forever(round_: Callable[[], Awaitable[int]], policy: Policy, name: str) -> None:
    """Run rounds for ever: at once again after a full batch, else after `poll_seconds`. An
    outage (database away) or a bug in one round must not end the task."""
    while True:
        try:
            handled = await round_()
        except Exception as exc:
            log.warning("effect_round_failed", effect=name, error=repr(exc))
            handled = 0
        if handled < policy.batch:
            await asyncio.sleep(policy.poll_seconds)
