"""`flexctl projection rebuild enrollment-status` on the real topics and database.

A fresh application's journey is published to the real topics and handled by the live path
(enrollment's own events recorded as the service layer does when it appends them; the others
through the `status` subscription's handlers and the kernel's IdempotentConsumer, on the records
read back from Kafka) into a schema of its own. The rebuild then reads the topics from the beginning (with
everybody else's facts too: the assertions look at this application only) and must give exactly
the view live processing gave, keep what arrived meanwhile, and leave no table behind.
"""

import asyncio
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from typer.testing import CliRunner

from contracts.envelope import Envelope
from contracts.events import topic_of
from contracts.events.payment import PaymentSettled
from contracts.topics import dlq_topic
from kernel.consumer import IdempotentConsumer
from kernel.db import migrate, migrations_from
from ops import cli_support, flexctl
from ops.kafka_ops import partitions_of
from ops.rebuild import StatusRebuild
from services.enrollment import projections, rebuild
from services.enrollment.status import fold
from tests.support.apps import enrollment_handlers
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_ADMIN,
    TOPIC_PREFIX,
    connect_as,
    drop_schemas,
    role_password,
    service_pool,
    topic,
    unique_name,
)
from tests.support.journey import START, Journey, small_journey
from tests.support.kafka import publish


def settled(j: Journey) -> Envelope:
    """A payment the topics have not seen: it reaches the live table while the rebuild runs."""
    bill_id = uuid4()
    event = PaymentSettled(
        payment_id=uuid4(), bill_id=bill_id, account_id=uuid4(), insured_person_id=j.applicant_id, payer_id=None,
        payer_name_masked=None, channel="wechat", channel_txn_id=f"wx-{bill_id}", amount_fen=100, bank=None,
        settled_at=START + timedelta(days=1),
    )  # fmt: skip
    return Envelope.wrap(
        event, stream_id=f"bill-{bill_id}", stream_version=1, producer="payment", correlation_id="late"
    )


async def record_own(pool: asyncpg.Pool, envelopes: Sequence[Envelope]) -> None:
    """What enrollment's service layer does in the transaction that appends its own events."""
    async with pool.acquire() as conn:
        await projections.record_facts(conn, [e for e in envelopes if e.producer == "enrollment"])


@dataclass
class LivePath:
    """What the running service's `status` subscription does: every record that reaches its
    topics (identity, payment, notify), through the kernel's IdempotentConsumer and enrollment's
    status handlers, into the test's schema. It follows the topics from where they ended when it
    was created, so it sees the journey and what running services did about it (e.g. notify
    texts the applicant)."""

    consumer: IdempotentConsumer
    reader: AIOKafkaConsumer
    positions: dict[TopicPartition, int]

    @classmethod
    async def start(cls, pool: asyncpg.Pool, producer: AIOKafkaProducer, schema: str) -> "LivePath":
        subscriptions = enrollment_handlers(schema, Path(tempfile.gettempdir())).subscriptions()
        status = next(s for s in subscriptions if s.purpose == "status")
        reader = AIOKafkaConsumer(**KAFKA_ADMIN.options(), enable_auto_commit=False)
        await reader.start()
        parts = await partitions_of(KAFKA_ADMIN, [topic(name) for name in status.topics], wait_seconds=5)
        reader.assign(parts)
        consumer = IdempotentConsumer(
            name=unique_name("t.enrollment.status"),
            pool=pool,
            producer=producer,
            dlq_topic=topic(dlq_topic("enrollment")),
            handlers=status.handlers,
        )
        return cls(consumer, reader, dict(await reader.end_offsets(parts)))

    async def catch_up(self) -> None:
        """Handle everything published up to now."""
        ends = await self.reader.end_offsets(list(self.positions))
        todo = {tp for tp in self.positions if ends[tp] > self.positions[tp]}
        for tp in todo:
            self.reader.seek(tp, self.positions[tp])
        while todo:
            for tp, records in (await self.reader.getmany(*todo, timeout_ms=1000)).items():
                wanted = [r for r in records if r.offset < ends[tp]]
                await self.consumer.handle_batch(wanted)
                if records and records[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        self.positions = dict(ends)

    async def stop(self) -> None:
        await self.reader.stop()


@pytest.fixture
async def enrollment_pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await service_pool("enrollment", schema, 1, 4)
    await migrate(pool, schema, migrations_from("services.enrollment"))
    yield pool
    await pool.close()


@pytest.fixture
async def live(enrollment_pool: asyncpg.Pool, producer: AIOKafkaProducer, schema: str) -> AsyncIterator[LivePath]:
    path = await LivePath.start(enrollment_pool, producer, schema)
    yield path
    await path.stop()


async def table_shape(pool: asyncpg.Pool) -> dict[str, Any]:
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'status_facts' AND schemaname = current_schema()"
    constraints = "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('status_facts')"
    leftovers = ("status_facts_rebuild", "status_facts_old")
    return {
        "oid": await pool.fetchval("SELECT to_regclass('status_facts')::oid"),
        "indexes": sorted(r["indexname"] for r in await pool.fetch(indexes)),
        "constraints": sorted(r["conname"] for r in await pool.fetch(constraints)),
        "leftovers": [t for t in leftovers if await pool.fetchval("SELECT to_regclass($1)", t)],
    }


async def test_the_rebuild_gives_the_live_view_keeps_late_facts_and_switches(
    enrollment_pool: asyncpg.Pool, producer: AIOKafkaProducer, live: LivePath, schema: str
) -> None:
    j = small_journey()
    await publish(producer, j.envelopes)
    await record_own(enrollment_pool, j.envelopes)
    await live.catch_up()
    app = j.application_id
    first_view = fold(app, await projections.facts_of(enrollment_pool, app))
    assert first_view is not None and first_view.status == "approved" and first_view.notified
    before = await table_shape(enrollment_pool)
    late = settled(j)
    live_view: dict[str, Any] = {}

    async def between_read_and_switch() -> None:
        """Live processing goes on during the rebuild; and a fact the topics never gave arrives."""
        await live.catch_up()
        async with enrollment_pool.acquire() as conn:
            await projections.record_facts(conn, [late])
        live_view["facts"] = await projections.facts_of(enrollment_pool, app)

    report = await StatusRebuild(
        DATABASE_URL,
        schema,
        KAFKA_ADMIN,
        topic_prefix=TOPIC_PREFIX,
        before_switch=between_read_and_switch,
        user="enrollment",
        password=role_password("enrollment"),
    ).run()

    rebuilt = await projections.facts_of(enrollment_pool, app)
    view = fold(app, rebuilt)
    assert view == fold(app, live_view["facts"])  # exactly what live processing had at the switch
    assert view is not None and view.status == "active"  # the late payment survived the switch
    assert {e.event_id: e for e in rebuilt} == {e.event_id: e for e in live_view["facts"]}
    facts = {e.event_id for e in j.envelopes if e.event_type in rebuild.FACT_EVENT_TYPES}
    assert {e.event_type for e in rebuilt}.isdisjoint({"ReviewCaseOpened", "ReviewDecided"})
    assert facts | {late.event_id} <= {e.event_id for e in rebuilt}
    # the topics gave the journey; the late fact (and what arrived after the read) was carried over
    assert report.carried_over >= 1 and report.total >= report.inserted + 1
    read = [e for e in j.envelopes if topic_of(e.event_type) in rebuild.TOPICS]  # not review.events
    assert report.inserted >= len(facts) and report.messages >= len(read) and report.failed == 0
    assert len(read) < len(j.envelopes)
    after = await table_shape(enrollment_pool)
    assert after["oid"] != before["oid"] and after["leftovers"] == []
    assert after["indexes"] == before["indexes"] and after["constraints"] == before["constraints"]


async def test_a_writer_held_off_by_the_switch_writes_into_the_new_table(
    enrollment_pool: asyncpg.Pool, schema: str
) -> None:
    j = small_journey()
    first, second = settled(j), settled(j)
    async with enrollment_pool.acquire() as writer:
        await projections.record_facts(writer, [first])  # its statement is prepared on the old table
        pid = writer.get_server_pid()
        pending: list[asyncio.Task[None]] = []

        async def while_locked() -> None:
            pending.append(asyncio.create_task(projections.record_facts(writer, [second])))
            for _ in range(100):  # until the writer waits for the lock
                if await enrollment_pool.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
                ):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the writer was not held off")

        report = await StatusRebuild(
            DATABASE_URL,
            schema,
            KAFKA_ADMIN,
            topic_prefix=TOPIC_PREFIX,
            while_locked=while_locked,
            user="enrollment",
            password=role_password("enrollment"),
        ).run()
        await asyncio.wait_for(pending[0], 10)
    assert report.carried_over == 1  # `first`; `second` was not written yet
    stored = {r["event_id"] for r in await enrollment_pool.fetch("SELECT event_id FROM status_facts")}
    assert {first.event_id, second.event_id} <= stored


def test_the_command_keeps_the_old_table_when_asked_and_then_refuses_to_overwrite_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = unique_name("t")

    async def prepare() -> None:
        pool = await service_pool("enrollment", schema, 1, 1)
        try:
            await migrate(pool, schema, migrations_from("services.enrollment"))
        finally:
            await pool.close()

    async def leftovers() -> list[str]:
        conn = await connect_as("enrollment", schema)
        try:
            names = ("status_facts", "status_facts_old", "status_facts_rebuild")
            return [n for n in names if await conn.fetchval("SELECT to_regclass($1)", n)]
        finally:
            await conn.close()

    asyncio.run(prepare())
    monkeypatch.setattr(cli_support.console, "width", 200)
    command = ["projection", "rebuild", "enrollment-status", "--schema", schema]
    try:
        runner = CliRunner()
        kept = runner.invoke(flexctl.app, [*command, "--keep-old"])
        assert kept.exit_code == 0, kept.output
        assert "carried over" in kept.output and "status_facts_old" in kept.output
        assert asyncio.run(leftovers()) == ["status_facts", "status_facts_old"]
        refused = runner.invoke(flexctl.app, command)
        assert refused.exit_code == 1 and "drop it first" in refused.output
        assert asyncio.run(leftovers()) == ["status_facts", "status_facts_old"]
        missing = runner.invoke(flexctl.app, ["projection", "rebuild", "enrollment-status", "--schema", "no_such"])
        assert missing.exit_code == 1 and "wrong --schema" in missing.output
    finally:
        asyncio.run(drop_schemas(schema))
