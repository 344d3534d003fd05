"""Looking for personal data in clear: on topics (raw bytes, keys and headers) and in the services'
tables, for the end-to-end tests of sealing and erasure (docs/personal-data.md)."""

import asyncio
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.events.base import Sealed
from ops.kafka_ops import partitions_of
from tests.support.infra import KAFKA_ADMIN

# A full mainland mobile number (national or +86 form) and an 18-character resident ID number,
# not inside a longer run of letters or digits (UUIDs and base64 have those).
FULL_MOBILE = re.compile(rb"(?<![0-9A-Za-z])(?:\+?86)?1[3-9]\d{9}(?![0-9A-Za-z])")
FULL_ID_NUMBER = re.compile(rb"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def raw(self) -> bytes:
        """Everything the broker keeps of it: key, value and headers."""
        parts = [self.key or b"", self.value or b""]
        parts += [name.encode() + b"=" + value for name, value in self.headers]
        return b"\n".join(parts)

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


async def session_topics(prefix: str) -> list[str]:
    """Every event and dead-letter topic under `prefix` (the session's own, and those its tests made under it)."""
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(n for n in names if n.startswith(prefix) and n.endswith((".events", ".dlq")))


async def read_all(topics: Iterable[str]) -> list[Message]:
    """Every record of `topics`, from the beginning to their current end."""
    wanted = list(topics)
    parts = await partitions_of(KAFKA_ADMIN, wanted, wait_seconds=5) if wanted else []
    if not parts:
        return []
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        starts, ends = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
        todo = {tp for tp in parts if ends[tp] > starts[tp]}
        for tp in todo:
            consumer.seek(tp, starts[tp])
        found: list[Message] = []
        deadline = asyncio.get_running_loop().time() + 120
        while todo and asyncio.get_running_loop().time() < deadline:
            for tp, records in (await consumer.getmany(*todo, timeout_ms=500)).items():
                found += [
                    Message(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in records
                    if r.offset < ends[tp]
                ]
                if records and records[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        assert not todo, f"could not read {sorted(str(tp) for tp in todo)} to their end"
        return found
    finally:
        await consumer.stop()


def clear_findings(raw: bytes, secrets: Iterable[str]) -> list[str]:
    """What in `raw` is personal data in clear: full mobile and ID numbers, and any of `secrets`
    (names, birth dates, the exact numbers of the test's people)."""
    found = [f"mobile {m.group().decode()}" for m in FULL_MOBILE.finditer(raw)]
    found += [f"ID number {m.group().decode()}" for m in FULL_ID_NUMBER.finditer(raw)]
    found += [f"{s!r}" for s in secrets if s and s.encode() in raw]
    return found


def _sealed_in(value: Any) -> Iterator[Sealed]:
    if isinstance(value, dict):
        if {"key_id", "alg", "data"} <= set(value):
            yield Sealed.model_validate(value)
        for item in value.values():
            yield from _sealed_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sealed_in(item)


def sealed_of(messages: Iterable[Message], person: UUID) -> list[Sealed]:
    """Every sealed value of `person` in the messages' JSON values."""
    found: list[Sealed] = []
    for message in messages:
        try:
            body = json.loads(message.value or b"")
        except ValueError:
            continue
        found += [s for s in _sealed_in(body) if s.key_id == person]
    return found


async def schemas_with_tables(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        )
        return sorted(r["table_schema"] for r in rows)
    finally:
        await conn.close()


async def clear_in_tables(database_url: str, schemas: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Every row of every table of `schemas` whose text holds one of `secrets`, as "schema.table: secret"."""
    wanted = [s for s in secrets if s]
    conn = await asyncpg.connect(database_url)
    try:
        found: list[str] = []
        for schema in schemas:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
                schema,
            )
            for table in tables:
                name = f'"{schema}"."{table["table_name"]}"'
                rows = await conn.fetch(f"SELECT t::text AS row FROM {name} t")  # every column as text
                found += [f"{name}: {s!r}" for r in rows for s in wanted if s in r["row"]]
        return found
    finally:
        await conn.close()
