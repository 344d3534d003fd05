"""Throttling: sliding windows per key (an account, a client address, a phone) and lock-outs with
exponential backoff after repeated failures, kept in the service's PostgreSQL schema (kernel
migration 003_throttle.sql) so that every process of a service sees the same counts.

A `Rule` names what is counted and how much is allowed in its window:

- a *rate* (no `lockout`): `take` records one use, or refuses with 429 `too_many_attempts` once
  `limit` uses lie inside the last `window`; the answer's `Retry-After` is when the oldest leaves it;
- a *failure count* (with `lockout`): `failed` records one failure; the `limit`-th failure inside
  the window locks the key for `lockout`, doubled at each further lock-out (strikes), at most
  `max_lockout`; `check` refuses a locked key whatever it brings (the right password too), and
  `succeeded` forgets the failures. Strikes are forgotten once a key has been quiet for `max_lockout`
  after its last lock.

Keys are stored as HMAC-SHA-256 under the service's secret: a phone number never sits in clear in
these tables. Every refusal, failure and lock-out goes to the security log (`security_event`):
a structlog line `security_<event>` and a row of `security_log`, masked (kernel.logging), never a
password or a code.
"""

import hashlib
import hmac
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from fastapi import Request

from kernel.clock import utc_now
from kernel.db import Connection, Executor
from kernel.logging import get_logger, mask_text
from kernel.problems import Problem

log = get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    """`name` is stored with every hit (e.g. `identity_login_account`); `limit` uses or failures
    per `window`; `lockout`: the first lock-out's length (None: a plain rate)."""

    name: str
    limit: int
    window: timedelta
    lockout: timedelta | None = None
    max_lockout: timedelta = timedelta(hours=24)

    def lock_length(self, strikes: int) -> timedelta:
        assert self.lockout is not None
        length: timedelta = self.lockout * (2 ** min(strikes - 1, 20))
        return min(length, self.max_lockout)


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}秒"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes}分钟"
    return f"{math.ceil(minutes / 60)}小时"


class TooManyAttempts(Problem):
    """429 too_many_attempts, with `retry_after` (seconds) in the body and the Retry-After header."""

    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        wait = max(1, retry_after)
        super().__init__(
            "too_many_attempts",
            detail or f"操作过于频繁，请{_wait_text(wait)}后再试。",
            retry_after=wait,
        )
        self.retry_after = wait


def client_address(request: Request) -> str:
    """The address a request came from, as the server saw it (a proxy in front must be trusted to
    set it: uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


async def security_event(
    db: Executor, event: str, *, subject: str | None = None, address: str | None = None, **detail: Any
) -> None:
    """One line of the security log: `security_<event>` in the service's log and a `security_log`
    row. `subject` (e.g. a phone) is masked; pass no password or code."""
    masked = mask_text(subject) if subject else None
    clean = {k: (mask_text(v) if isinstance(v, str) else v) for k, v in detail.items()}
    log.warning(f"security_{event}", subject=masked, address=address, **clean)
    await db.execute(
        "INSERT INTO security_log (event, subject, address, detail) VALUES ($1, $2, $3, $4)",
        event,
        masked,
        address,
        clean,
    )


class Throttle:
    """Rules applied to keys, in the service's database. `secret` keys the stored hashes; `clock`
    gives `now` (tests move it)."""

    def __init__(self, pool: asyncpg.Pool, secret: bytes, clock: Callable[[], datetime] = utc_now) -> None:
        self.pool = pool
        self._secret = secret
        self.clock = clock

    def _key(self, rule: Rule, key: str) -> bytes:
        return hmac.new(self._secret, f"{rule.name}\x00{key}".encode(), hashlib.sha256).digest()

    async def _lock(self, conn: Connection, rule: Rule, digest: bytes) -> None:
        # One decision per (rule, key) at a time, across processes.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || encode($2, 'hex'), 0))", rule.name, digest
        )

    async def _locked_for(self, conn: Connection, rule: Rule, digest: bytes, now: datetime) -> int:
        until: datetime | None = await conn.fetchval(
            "SELECT locked_until FROM throttle_locks WHERE rule = $1 AND key = $2", rule.name, digest
        )
        if until is None or until <= now:
            return 0
        return math.ceil((until - now).total_seconds())

    async def check(self, rule: Rule, key: str) -> None:
        """Refuse (429) while the key is locked out (failure rules) or its window is full (rates)."""
        digest, now = self._key(rule, key), self.clock()
        async with self.pool.acquire() as conn:
            wait = await self._locked_for(conn, rule, digest, now)
            if not wait and rule.lockout is None:
                wait = await self._window_wait(conn, rule, digest, now)
        if wait:
            raise TooManyAttempts(wait)

    async def _window_wait(self, conn: Connection, rule: Rule, digest: bytes, now: datetime) -> int:
        rows = await conn.fetch(
            "SELECT at FROM throttle_hits WHERE rule = $1 AND key = $2 AND at > $3 ORDER BY at DESC LIMIT $4",
            rule.name,
            digest,
            now - rule.window,
            rule.limit,
        )
        if len(rows) < rule.limit:
            return 0
        oldest: datetime = rows[-1]["at"]
        return max(1, math.ceil((oldest + rule.window - now).total_seconds()))

    async def take(self, rule: Rule, key: str) -> None:
        """A rate: record one use, or refuse (429) when `limit` uses already lie in the window."""
        digest, now = self._key(rule, key), self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, rule, digest)
            wait = await self._window_wait(conn, rule, digest, now)
            if wait:
                raise TooManyAttempts(wait)
            await conn.execute("INSERT INTO throttle_hits (rule, key, at) VALUES ($1, $2, $3)", rule.name, digest, now)
            await self._forget_old(conn, rule, digest, now)

    async def give_back(self, rule: Rule, key: str) -> None:
        """A rate: forget the key's latest use, when what it was taken for did not happen (a code
        that could not be texted must not hold the phone's resend window)."""
        digest = self._key(rule, key)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM throttle_hits WHERE ctid = (SELECT ctid FROM throttle_hits "
                "WHERE rule = $1 AND key = $2 ORDER BY at DESC LIMIT 1)",
                rule.name,
                digest,
            )

    async def failed(self, rule: Rule, key: str) -> int:
        """A failure rule: record one failure; returns the lock-out it caused in seconds (0: none)."""
        assert rule.lockout is not None, f"{rule.name} counts no failures"
        digest, now = self._key(rule, key), self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, rule, digest)
            await conn.execute("INSERT INTO throttle_hits (rule, key, at) VALUES ($1, $2, $3)", rule.name, digest, now)
            await self._forget_old(conn, rule, digest, now)
            count = await conn.fetchval(
                "SELECT count(*) FROM throttle_hits WHERE rule = $1 AND key = $2 AND at > $3",
                rule.name,
                digest,
                now - rule.window,
            )
            if count < rule.limit:
                return 0
            lock = await conn.fetchrow(
                "SELECT strikes, locked_until FROM throttle_locks WHERE rule = $1 AND key = $2", rule.name, digest
            )
            quiet = lock is None or lock["locked_until"] + rule.max_lockout < now
            strikes = 1 if lock is None or quiet else int(lock["strikes"]) + 1
            length = rule.lock_length(strikes)
            await conn.execute(
                "INSERT INTO throttle_locks (rule, key, strikes, locked_until) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (rule, key) DO UPDATE "
                "SET strikes = EXCLUDED.strikes, locked_until = EXCLUDED.locked_until",
                rule.name,
                digest,
                strikes,
                now + length,
            )
            # The window starts again after the lock-out: the next `limit` failures lock again, longer.
            await conn.execute("DELETE FROM throttle_hits WHERE rule = $1 AND key = $2", rule.name, digest)
            return math.ceil(length.total_seconds())

    async def succeeded(self, rule: Rule, key: str) -> None:
        """A failure rule: the key's owner got it right; its failures are forgotten (a strike stays
        until the key has been quiet for `max_lockout`)."""
        digest = self._key(rule, key)
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM throttle_hits WHERE rule = $1 AND key = $2", rule.name, digest)

    async def _forget_old(self, conn: Connection, rule: Rule, digest: bytes, now: datetime) -> None:
        await conn.execute(
            "DELETE FROM throttle_hits WHERE rule = $1 AND key = $2 AND at <= $3", rule.name, digest, now - rule.window
        )
        if random.random() < 0.01:  # now and then, the hits of keys that never came back
            await conn.execute("DELETE FROM throttle_hits WHERE at < $1", now - timedelta(days=2))


def rule_from(settings: Mapping[str, Any], prefix: str, *, lockout: bool) -> Rule:
    """A rule from settings fields `<prefix>_limit`, `<prefix>_window_seconds` and, for failure
    rules, `<prefix>_lockout_seconds` and `<prefix>_max_lockout_seconds`."""
    return Rule(
        name=prefix,
        limit=int(settings[f"{prefix}_limit"]),
        window=timedelta(seconds=float(settings[f"{prefix}_window_seconds"])),
        lockout=timedelta(seconds=float(settings[f"{prefix}_lockout_seconds"])) if lockout else None,
        max_lockout=timedelta(seconds=float(settings.get(f"{prefix}_max_lockout_seconds", 86400))),
    )
