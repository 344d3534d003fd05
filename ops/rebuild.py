"""`flexctl projection rebuild enrollment-status`: the topics → a shadow table → the switch.

The Kafka side is here (a group-less replay of the topics the status facts come from,
`services.enrollment.rebuild.TOPICS`, up to the end offsets taken at the start); the table side
is enrollment's own (services/enrollment/rebuild.py).
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord

from contracts.envelope import Envelope
from kernel.db import Connection, SchemaMissing, create_pool
from kernel.kafka import KafkaAccess
from ops.kafka_ops import replay
from services.enrollment import rebuild
from services.enrollment.rebuild import Hook, RebuildRefused

__all__ = ["RebuildRefused", "RebuildReport", "StatusRebuild"]


@dataclass
class RebuildReport:
    messages: int = 0  # records read from the topics
    undecodable: int = 0  # not an envelope (the live consumer dead-letters those)
    facts: int = 0  # envelopes of a fact type (duplicates included)
    failed: int = 0  # facts the insert refused (the live consumer dead-letters those)
    inserted: int = 0  # distinct facts in the shadow after reading the topics
    carried_over: int = 0  # live facts the topics did not give (arrived during the rebuild)
    total: int = 0  # facts in the live table after the switch
    missing_topics: tuple[str, ...] = ()


@dataclass
class StatusRebuild:
    """Rebuild `<schema>.status_facts` from the topics with no downtime.

    `before_switch` runs between the end of the read and the switch, `while_locked` inside the
    switch's transaction with the live table locked (tests use both); `on_total`/`on_progress`
    drive a progress bar (messages to read / read)."""

    database_url: str
    schema: str
    kafka: KafkaAccess
    # enrollment's role: the rebuild works in enrollment's schema as enrollment would.
    user: str = field(kw_only=True)
    password: str = field(kw_only=True, repr=False)
    keep_old: bool = False
    topic_prefix: str = ""
    on_total: Callable[[int], None] = lambda _: None
    on_progress: Callable[[int], None] = lambda _: None
    before_switch: Hook | None = None
    while_locked: Hook | None = None
    report: RebuildReport = field(default_factory=RebuildReport, init=False)

    async def run(self) -> RebuildReport:
        try:
            pool = await create_pool(self.database_url, self.schema, 1, 1, user=self.user, password=self.password)
        except SchemaMissing as missing:
            raise RebuildRefused(f"{missing}, or it is a wrong --schema") from missing
        try:
            async with pool.acquire() as conn:
                await rebuild.require_live_table(conn, self.schema)
                await rebuild.lock_rebuild(conn, self.schema)
                await rebuild.prepare_shadow(conn)
                try:
                    await self._fill(conn)
                    if self.before_switch is not None:
                        await self.before_switch()
                    self.report.carried_over = await rebuild.switch(
                        conn, keep_old=self.keep_old, while_locked=self.while_locked
                    )
                except BaseException:
                    await rebuild.drop_shadow(conn)  # the live table is untouched: nothing else to undo
                    raise
                self.report.total = await rebuild.count(conn, rebuild.LIVE)
        finally:
            await pool.close()
        return self.report

    async def _fill(self, conn: Connection) -> None:
        """Read, decode and insert, one batch in flight: while PostgreSQL inserts a batch, this
        process decodes the next (the two are the rebuild's main costs, on different cores)."""
        report = self.report
        inserting: asyncio.Task[rebuild.Added] | None = None
        await rebuild.fill_without_waiting_for_disk(conn)
        try:
            async with replay(self.kafka, [self.topic_prefix + t for t in rebuild.TOPICS]) as source:
                report.missing_topics = tuple(source.missing)
                self.on_total(source.total)
                async for records in source.batches():
                    envelopes = self._decode(records)
                    if inserting is not None:
                        self._count(await inserting)
                    inserting = asyncio.create_task(rebuild.add_facts(conn, envelopes))
                    await asyncio.sleep(0)  # let it send its statement before this reads on
                    report.messages += len(records)
                    self.on_progress(len(records))
                if inserting is not None:
                    self._count(await inserting)
                    inserting = None
        finally:
            if inserting is not None:  # the read failed: the connection must be free for cleanup
                inserting.cancel()
                with contextlib.suppress(BaseException):
                    await inserting
        report.inserted = await rebuild.count(conn, rebuild.SHADOW)

    def _decode(self, records: Sequence[ConsumerRecord]) -> list[Envelope]:
        envelopes: list[Envelope] = []
        for record in records:
            try:
                envelopes.append(Envelope.from_json(record.value or b""))
            except ValueError:  # pydantic's ValidationError is one
                self.report.undecodable += 1
        return envelopes

    def _count(self, added: rebuild.Added) -> None:
        self.report.facts += added.facts
        self.report.failed += added.failed
