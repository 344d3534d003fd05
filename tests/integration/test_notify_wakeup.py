"""The SMS sender is woken by the commit that records a message (NOTIFY), not by its poll: with
the poll interval at 60 s, a decision recorded while the sender waits is texted at once (issue 10,
item 5; services/notify/sender.py). On the real database, with the local sink gateway."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.events.review import ReviewDecided
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore
from kernel.runtime import StoreOnly
from services.notify.domain import sms_id_for
from services.notify.gateway import LocalSinkGateway
from services.notify.sender import Sender
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from services.notify.templates import load_templates

TEMPLATES = load_templates(None, "常州人社")
POLL_SECONDS = 60.0  # far longer than the test waits: only a wake-up can send in time


class CountingSender(Sender):
    """The sender, counting its rounds: a woken round is one more, a poll would come too late."""

    rounds = 0

    async def run_once(self) -> int:
        claimed = await super().run_once()
        self.rounds += 1
        return claimed


@pytest.fixture
async def notify_pool(pool: asyncpg.Pool, schema: str) -> asyncpg.Pool:
    await migrate(pool, schema, migrations_from("services.notify"))
    return pool


@pytest.fixture
async def sender(notify_pool: asyncpg.Pool, schema: str) -> AsyncIterator[CountingSender]:
    service = NotifyService(StoreOnly(EventStore("notify", schema)), TEMPLATES)
    settings = NotifySettings(schema_name=schema, notify_sender_poll_seconds=POLL_SECONDS)
    running = CountingSender(notify_pool, service, LocalSinkGateway(notify_pool, TEMPLATES), settings)
    task = asyncio.create_task(running.run())
    await until(lambda: running.rounds >= 1 and running._listener is not None, "the first round")
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    """Wait (generously: the poll is 60 s away) for `check()` to hold."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _holds(check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _holds(value: bool | Awaitable[bool]) -> bool:
    return await value if not isinstance(value, bool) else value


async def record_decision(sender: Sender, pool: asyncpg.Pool) -> UUID:
    """What notify's consumer does on UserRegistered and ReviewDecided, in its transaction."""
    user_id, case_id = uuid4(), uuid4()
    decided = ReviewDecided(
        case_id=case_id, application_id=uuid4(), applicant_id=user_id, attempt=1, decision="approved",
        reasons=[], reviewer_id=uuid4(), decided_at=datetime.now(UTC),
    )  # fmt: skip
    envelope = Envelope.wrap(decided, stream_id=str(case_id), stream_version=2, producer="review", correlation_id="c")
    async with pool.acquire() as conn, conn.transaction():
        await sender.service.remember_recipient(conn, user_id, f"+86139{uuid4().int % 10**8:08d}")
        await sender.service.text_decision(conn, envelope.event_id, decided, envelope.correlation_id)
    return sms_id_for(envelope.event_id)


async def sent(pool: asyncpg.Pool, sms_id: UUID) -> bool:
    state = await pool.fetchval("SELECT state FROM sms_messages WHERE sms_id = $1", sms_id)
    texted = await pool.fetchval("SELECT count(*) FROM sms_sink WHERE out_id = $1", str(sms_id))
    return bool(state == "sent" and texted == 1)


async def test_a_recorded_decision_wakes_the_sender_long_before_its_poll(
    sender: CountingSender, notify_pool: asyncpg.Pool
) -> None:
    rounds_before = sender.rounds
    sms_id = await record_decision(sender, notify_pool)
    await until(lambda: sent(notify_pool, sms_id), "the SMS to be sent")
    assert sender.rounds == rounds_before + 1, "one woken round sent it; no poll came in between"


async def test_the_sender_listens_again_after_losing_its_connection(
    sender: CountingSender, notify_pool: asyncpg.Pool
) -> None:
    lost = sender._listener
    assert lost is not None
    await notify_pool.execute("SELECT pg_terminate_backend($1)", lost.get_server_pid())
    await until(lambda: sender._listener is not None and sender._listener is not lost, "a new listener")
    sms_id = await record_decision(sender, notify_pool)
    await until(lambda: sent(notify_pool, sms_id), "the SMS to be sent")
