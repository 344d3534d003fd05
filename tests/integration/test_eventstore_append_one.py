"""A single event is appended by a statement of its own (scalar parameters, one generic plan):
against the real PostgreSQL, it queues the event for the topic and wakes the relay only when the
event is published, exactly as the statement for several events does."""

import asyncio
from uuid import uuid4

import asyncpg

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from tests.support.events import KernelPing

WAIT = 10.0  # seconds for a notification that must come (a bound, not a measurement)


def _envelope(store: EventStore, stream_id: str, event_type: str) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        event_type=event_type,
        schema_version=1,
        stream_id=stream_id,
        stream_version=1,
        occurred_at="2025-03-02T01:00:00Z",
        producer=store.producer,
        correlation_id="c",
        data={"n": 1, "name": "张伟"},
    )


async def test_one_event_is_stored_queued_and_wakes_the_relay_once(pool: asyncpg.Pool, store: EventStore) -> None:
    woken: list[str] = []
    arrived = asyncio.Event()

    def on_notify(*args: object) -> None:
        woken.append(str(args[2]))
        arrived.set()

    async with pool.acquire() as listener, pool.acquire() as conn:
        await listener.add_listener(store.outbox_channel, on_notify)
        private = _envelope(store, "private", "KernelSecret")
        await store.append_envelopes(conn, [private], {("KernelPing", 1)})  # not published: no wake-up
        async with conn.transaction():
            [ping] = await store.append(conn, "ping", 0, [KernelPing(n=1)], correlation_id="c")
            assert woken == []  # delivered at commit, not before
        await asyncio.wait_for(arrived.wait(), WAIT)
        await listener.remove_listener(store.outbox_channel, on_notify)
    # notifications come in commit order: one from the private append would have come first
    assert woken == [store.outbox_channel]
    queued = await pool.fetch("SELECT e.event_id FROM outbox o JOIN events e USING (position)")
    assert [r["event_id"] for r in queued] == [ping.event_id]
    assert await store.load(pool, "private") == [private]
    assert (await store.load(pool, "ping"))[0] == ping
