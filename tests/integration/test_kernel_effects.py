"""kernel.effects on the real database: a table shaped like payment's withholding collection requests
(text out id, amount in fen) and a scripted bank that, like a real provider, does not de-duplicate.
Each test counts what reached the bank: exactly one request per effect, whatever happened."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from uuid import uuid4

import asyncpg
import pytest

from kernel.clock import utc_now
from kernel.db import Connection
from kernel.effects import Claim, Dispatcher, EffectTable, LookupOutcome, Next, Observer, Policy, SendResult

DDL = """
CREATE TABLE collections (
    out_id            text PRIMARY KEY,
    account           text NOT NULL,
    amount_fen        bigint NOT NULL,
    state             text NOT NULL DEFAULT 'pending',
    uncertain         boolean NOT NULL DEFAULT false,
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    sending_since     timestamptz,
    first_attempt_at  timestamptz,
    last_attempt_at   timestamptz,
    sent_at           timestamptz,
    failed_at         timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    provider          text,
    provider_ref      text,
    last_error        text
);
-- the service's "final event": written by on_final in the transaction that records the outcome
CREATE TABLE collection_events (out_id text NOT NULL, kind text NOT NULL, detail text);
"""


@dataclass(frozen=True)
class Collection:
    out_id: str
    account: str
    amount_fen: int


def load(row: asyncpg.Record) -> Collection:
    return Collection(row["out_id"], row["account"], row["amount_fen"])


TABLE = EffectTable("collections", "out_id", load)


@dataclass
class Bank:
    """Scripted answers, then plain acceptance. `received` is the bank's side: every request it
    got, duplicates included. Send steps: ok, timeout (nothing received), deliver_then_timeout,
    deliver_then_hang (received; the answer waits for `release`), refuse:<code>, busy:<code>.
    Lookup steps: fail (cannot say), else the truth from `received`."""

    sends: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    received: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: {"send": 0, "lookup": 0})
    release: asyncio.Event = field(default_factory=asyncio.Event)
    name: str = "bank"

    def _receive(self, c: Collection) -> str:
        serial = f"serial-{sum(map(len, self.received.values())) + 1}"
        self.received.setdefault(c.out_id, []).append(serial)
        return serial

    async def send(self, effect: Collection) -> SendResult:
        self.calls["send"] += 1
        step = self.sends.pop(0) if self.sends else "ok"
        if step == "timeout":
            raise TimeoutError
        if step.startswith(("refuse:", "busy:")):
            kind, code = step.split(":")
            return SendResult.refused(code, retryable=kind == "busy")
        serial = self._receive(effect)
        if step == "deliver_then_timeout":
            raise TimeoutError
        if step == "deliver_then_hang":
            await self.release.wait()
        return SendResult.accepted(serial)

    async def lookup(self, effect: Collection, since: datetime, until: datetime) -> SendResult | None:
        self.calls["lookup"] += 1
        assert since <= until
        if self.lookups and self.lookups.pop(0) == "fail":
            raise ConnectionError("bank query service unavailable")
        found = self.received.get(effect.out_id)
        return SendResult.accepted(found[0]) if found else None


class Seen(Observer[Collection]):
    def __init__(self) -> None:
        self.lookups: list[str] = []

    def looked_up(self, claim: Claim[Collection], outcome: LookupOutcome) -> None:
        self.lookups.append(outcome)


async def record_final(conn: Connection, claim: Claim[Collection], outcome: Next, provider: str, now: datetime) -> None:
    detail = outcome.reference if outcome.state == "sent" else outcome.error_code
    await conn.execute(
        "INSERT INTO collection_events (out_id, kind, detail) VALUES ($1, $2, $3)",
        claim.effect.out_id,
        f"Collection{outcome.state.capitalize()}",
        detail,
    )


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute(DDL)
    return pool


POLICY = Policy(batch=10, poll_seconds=0.05, max_attempts=3, backoff_seconds=0, call_timeout_seconds=2, lease_seconds=6)


def dispatcher(
    pool: asyncpg.Pool, bank: Bank, policy: Policy = POLICY, observer: Seen | None = None
) -> Dispatcher[Collection]:
    return Dispatcher(pool, TABLE, bank, policy, on_final=record_final, observer=observer)


async def request(pool: asyncpg.Pool, amount_fen: int = 42_000) -> str:
    out_id = f"WH{uuid4().hex[:16]}"
    await pool.execute(
        "INSERT INTO collections (out_id, account, amount_fen) VALUES ($1, '6222000000000001', $2)", out_id, amount_fen
    )
    return out_id


async def row(pool: asyncpg.Pool, out_id: str) -> asyncpg.Record:
    found = await pool.fetchrow("SELECT * FROM collections WHERE out_id = $1", out_id)
    assert found is not None
    return found


async def finals(pool: asyncpg.Pool, out_id: str) -> list[tuple[str, str | None]]:
    rows = await pool.fetch("SELECT kind, detail FROM collection_events WHERE out_id = $1", out_id)
    return [(r["kind"], r["detail"]) for r in rows]


async def expire_lease(pool: asyncpg.Pool, out_id: str) -> None:
    """As if the lease's time had passed (the claim compares with the database's clock)."""
    await pool.execute(
        "UPDATE collections SET sending_since = sending_since - interval '1 hour' WHERE out_id = $1", out_id
    )


async def test_a_plain_request_is_sent_once_with_its_final_event(db: asyncpg.Pool) -> None:
    out_id, bank = await request(db), Bank()
    assert await dispatcher(db, bank).run_once() == 1
    r = await row(db, out_id)
    assert (r["state"], r["attempts"], r["uncertain"], r["provider"], r["provider_ref"]) == (
        "sent",
        1,
        False,
        "bank",
        "serial-1",
    )
    assert r["sent_at"] is not None and r["sending_since"] is None
    assert await finals(db, out_id) == [("CollectionSent", "serial-1")]
    assert await dispatcher(db, bank).run_once() == 0 and bank.calls == {"send": 1, "lookup": 0}


@pytest.mark.parametrize("bank_got_it", [True, False], ids=["received-before-crash", "lost-before-crash"])
async def test_a_crash_after_the_claim_is_looked_up_before_any_resend(db: asyncpg.Pool, bank_got_it: bool) -> None:
    """The dispatcher claimed (committed), called the bank and died before recording: the row stays
    `sending`. After the lease another dispatcher asks the bank first and sends only if it has nothing."""
    out_id, bank = await request(db), Bank()
    [claim] = await TABLE.claim_due(db, 10, POLICY.lease_seconds)
    assert (claim.effect, claim.attempts, claim.uncertain) == (Collection(out_id, "6222000000000001", 42_000), 1, False)
    if bank_got_it:
        await bank.send(claim.effect)
    # ... kill -9 here: nothing recorded. Within the lease nobody touches the row.
    assert await dispatcher(db, bank).run_once() == 0
    await expire_lease(db, out_id)

    seen = Seen()
    assert await dispatcher(db, bank, observer=seen).run_once() == 1
    r = await row(db, out_id)
    assert (r["state"], r["attempts"], r["provider_ref"]) == ("sent", 2, "serial-1")
    assert bank.received == {out_id: ["serial-1"]}, "exactly one request reached the bank"
    assert seen.lookups == ["found" if bank_got_it else "not_found"]
    assert bank.calls == {"send": 1, "lookup": 1}
    assert await finals(db, out_id) == [("CollectionSent", "serial-1")]


async def test_an_unanswered_send_is_settled_by_lookup_not_by_a_second_send(db: asyncpg.Pool) -> None:
    out_id, bank = await request(db), Bank(sends=["deliver_then_timeout"])
    d = dispatcher(db, bank)
    await d.run_once()
    r = await row(db, out_id)
    assert (r["state"], r["uncertain"], r["last_error"]) == ("pending", True, "timeout")
    await d.run_once()
    assert (await row(db, out_id))["state"] == "sent"
    assert bank.calls == {"send": 1, "lookup": 1} and len(bank.received[out_id]) == 1


async def test_a_dispatcher_that_lost_its_lease_records_nothing(db: asyncpg.Pool) -> None:
    """A's answer from the bank is slow; its lease runs out and B takes the request over, finds it at
    the bank by its out id and records it. When A's answer finally comes, A records nothing."""
    out_id, bank = await request(db), Bank(sends=["deliver_then_hang"])
    slow = asyncio.create_task(dispatcher(db, bank).run_once())

    async def at_the_bank() -> None:
        while out_id not in bank.received:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(at_the_bank(), 5)
    await expire_lease(db, out_id)
    assert await dispatcher(db, bank).run_once() == 1  # B: takeover, uncertain, lookup finds it
    taken = await row(db, out_id)
    assert (taken["state"], taken["attempts"], taken["provider_ref"]) == ("sent", 2, "serial-1")

    bank.release.set()
    assert await slow == 1
    after = await row(db, out_id)
    assert (after["state"], after["attempts"], after["updated_at"]) == ("sent", 2, taken["updated_at"])
    assert await finals(db, out_id) == [("CollectionSent", "serial-1")]
    assert bank.calls == {"send": 1, "lookup": 1} and bank.received == {out_id: ["serial-1"]}


async def test_finish_with_a_stale_claim_changes_nothing(db: asyncpg.Pool) -> None:
    out_id = await request(db)
    [old] = await TABLE.claim_due(db, 10, POLICY.lease_seconds)
    await expire_lease(db, out_id)
    [new] = await TABLE.claim_due(db, 10, POLICY.lease_seconds)
    assert (new.attempts, new.uncertain) == (2, True)
    assert not await TABLE.finish(db, old, Next("failed", error_code="late"), "bank", utc_now(), record_final)
    r = await row(db, out_id)
    assert (r["state"], r["attempts"], r["last_error"]) == ("sending", 2, None)
    assert await finals(db, out_id) == []


async def test_a_permanent_refusal_fails_at_once_with_its_final_event(db: asyncpg.Pool) -> None:
    out_id, bank = await request(db), Bank(sends=["refuse:ACCOUNT_CLOSED"])
    await dispatcher(db, bank).run_once()
    r = await row(db, out_id)
    assert (r["state"], r["attempts"], r["last_error"], r["uncertain"]) == ("failed", 1, "ACCOUNT_CLOSED", False)
    assert r["failed_at"] is not None and r["sent_at"] is None
    assert await finals(db, out_id) == [("CollectionFailed", "ACCOUNT_CLOSED")]
    assert await dispatcher(db, bank).run_once() == 0 and bank.calls["send"] == 1


async def test_a_retryable_refusal_backs_off_then_succeeds(db: asyncpg.Pool) -> None:
    out_id, bank = await request(db), Bank(sends=["busy:SYSTEM_BUSY", "busy:SYSTEM_BUSY"])
    d = dispatcher(db, bank, Policy(max_attempts=5, backoff_seconds=0.4, call_timeout_seconds=1, lease_seconds=3))
    await d.run_once()
    first = await row(db, out_id)
    assert (first["state"], first["uncertain"], first["last_error"]) == ("pending", False, "SYSTEM_BUSY")
    assert 0.3 < (first["next_attempt_at"] - first["updated_at"]).total_seconds() <= 0.5
    assert await d.run_once() == 0, "not due before its backoff"
    await asyncio.sleep(0.5)
    await d.run_once()
    second = await row(db, out_id)
    assert 0.7 < (second["next_attempt_at"] - second["updated_at"]).total_seconds() <= 0.9, "the delay doubles"
    await asyncio.sleep(0.9)
    await d.run_once()
    done = await row(db, out_id)
    assert (done["state"], done["attempts"], done["provider_ref"]) == ("sent", 3, "serial-1")
    assert bank.calls == {"send": 3, "lookup": 0}, "a refusal is a definite answer: no lookup"
    assert await finals(db, out_id) == [("CollectionSent", "serial-1")]


async def test_a_lookup_that_cannot_say_never_resends_and_gives_up_only_on_a_no(db: asyncpg.Pool) -> None:
    """max_attempts 3, yet while the bank cannot say, the request stays in doubt however many
    rounds pass: neither sent again nor failed. When the bank finally says "no such request" past
    the last attempt, it fails without a send."""
    out_id = await request(db)
    bank = Bank(sends=["timeout"], lookups=["fail"] * 4)
    d = dispatcher(db, bank)
    for _ in range(5):
        await d.run_once()
        r = await row(db, out_id)
        assert (r["state"], r["uncertain"]) == ("pending", True)
    assert r["last_error"] == "lookup_failed" and r["attempts"] == 5
    assert bank.calls == {"send": 1, "lookup": 4} and bank.received == {}
    assert await finals(db, out_id) == []

    await d.run_once()
    r = await row(db, out_id)
    assert (r["state"], r["last_error"], r["attempts"]) == ("failed", "max_attempts_reached", 6)
    assert bank.calls == {"send": 1, "lookup": 5}
    assert await finals(db, out_id) == [("CollectionFailed", "max_attempts_reached")]


async def test_a_failing_final_event_rolls_the_record_back(db: asyncpg.Pool) -> None:
    """The outcome and its event commit together: if the event cannot be written the row stays
    `sending`, and the takeover finds the request at the bank instead of sending it again."""
    out_id, bank = await request(db), Bank()

    async def broken(conn: Connection, claim: Claim[Collection], outcome: Next, provider: str, now: datetime) -> None:
        await conn.execute("INSERT INTO collection_events (out_id, kind) VALUES ($1, NULL)", claim.effect.out_id)

    await Dispatcher(db, TABLE, bank, POLICY, on_final=broken).run_once()
    assert ((await row(db, out_id))["state"], await finals(db, out_id)) == ("sending", [])
    await expire_lease(db, out_id)
    await dispatcher(db, bank).run_once()
    assert (await row(db, out_id))["state"] == "sent" and bank.calls == {"send": 1, "lookup": 1}
    assert await finals(db, out_id) == [("CollectionSent", "serial-1")]


async def test_concurrent_dispatchers_send_each_request_once(db: asyncpg.Pool) -> None:
    ids = {await request(db, amount_fen=n) for n in range(1, 41)}
    bank = Bank()
    dispatchers = [dispatcher(db, bank, Policy(batch=3, call_timeout_seconds=1, lease_seconds=3)) for _ in range(4)]
    for _ in range(5):
        await asyncio.gather(*(d.run_once() for d in dispatchers))
    assert set(bank.received) == ids and all(len(v) == 1 for v in bank.received.values())
    assert await db.fetchval("SELECT count(*) FROM collection_events WHERE kind = 'CollectionSent'") == 40


async def test_the_loop_survives_an_outage_and_resumes(pool: asyncpg.Pool) -> None:
    """`run` started before its table exists (every round fails, as when the database is away)
    keeps going, and sends once the table is there."""
    bank = Bank()
    task = asyncio.create_task(dispatcher(pool, bank).run())
    try:
        await asyncio.sleep(0.3)
        assert not task.done()
        await pool.execute(DDL)
        out_id = await request(pool)

        async def sent() -> None:
            while (await row(pool, out_id))["state"] != "sent":
                await asyncio.sleep(0.05)

        await asyncio.wait_for(sent(), 10)
    finally:
        task.cancel()
    assert bank.received == {out_id: ["serial-1"]}
