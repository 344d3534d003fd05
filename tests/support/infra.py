"""Where the real PostgreSQL and Kafka of the tests are, and small helpers around them.

The environment wins (DATABASE_URL, KAFKA_BOOTSTRAP); otherwise the servers that `make up`
(or `.ci/run`) started locally are used. Integration tests never fake either of them.

The broker authenticates every client (docs/downstream.md: "Credentials"). The tests' own helpers
(topics, reading, publishing as any producer) connect as the broker's admin (`KAFKA_ADMIN`); the
services under test connect as themselves, with the shipped development secrets, and the session
provisions their principals and ACLs for its topics (tests/conftest.py).
"""

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any
from urllib.parse import urlparse, urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from confluent_kafka.admin import AclBinding

from contracts.access import SUBSCRIBER
from contracts.topics import SERVICES
from kernel.db import create_pool, drop_schema, provision
from kernel.kafka import KafkaAccess
from kernel.settings import local_secret
from ops import broker_access
from ops.db_access import admin_url
from ops.kafka_ops import partitions_of

# The database's address; every test connects as a service's role (`service_pool`), after
# provisioning its schema for that role with the administrator's connection (ADMIN_URL:
# DATABASE_ADMIN_URL, else the local cluster's socket, else DATABASE_URL; ops.db_access).
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:55432/flexenroll")
ADMIN_URL = admin_url(DATABASE_URL)
# The role of tests of the kernel alone, which stand for no service (their events' producer is
# "testsvc" too): provisioned like a service's, with the same rights.
KERNEL_TEST_ROLE = "testsvc"
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")
# Each test session uses physical topics of its own ("test.<session>.identity.events", …), so
# that neither a system started by `make up` on the same broker nor another test session reacts
# to its events, and it sees none of theirs. They are deleted when the session ends.
TOPIC_PREFIX = os.environ.get("TEST_TOPIC_PREFIX") or f"test.{uuid.uuid4().hex[:8]}."
KAFKA_ADMIN = broker_access.BrokerAdminSettings(kafka_bootstrap=KAFKA_BOOTSTRAP).access()
_granted: list[AclBinding] = []


def principal(name: str) -> KafkaAccess:
    """The test broker as `name` with its shipped development secret (as a service connects)."""
    return KAFKA_ADMIN.as_principal(name, local_secret("kafka", name))


def group_prefix(label: str = "t") -> str:
    """A consumer-group prefix of one test's own (CONSUMER_GROUP_PREFIX), under the session's: a
    test starting a service needs groups no other test uses, so every principal may use the
    session's groups (see `provision_session`)."""
    return f"{TOPIC_PREFIX}{unique_name(label)}."


def grant(bindings: list[AclBinding]) -> None:
    """Create ACLs for this session; `revoke_session` deletes them when it ends."""
    broker_access.grant(KAFKA_ADMIN, bindings)
    _granted.extend(bindings)


def provision_session() -> None:
    """Principals and the ACLs of ops/broker_access.py for the session's topics and groups, exactly
    as `make infra-up` provisions them for the unprefixed ones; and, because each test takes groups
    of its own (`group_prefix`), every principal may also use any group under the session's prefix."""
    _granted.extend(broker_access.provision(KAFKA_ADMIN, TOPIC_PREFIX, TOPIC_PREFIX))
    grant(
        [
            binding
            for name in (*SERVICES, SUBSCRIBER)
            for binding in broker_access.allow(
                name, broker_access.GROUP, TOPIC_PREFIX, broker_access.PREFIXED, broker_access.READ
            )
        ]
    )


def allow_topics(topic_prefix: str) -> None:
    """The ACLs of ops/broker_access.py for topics of a test's own under `topic_prefix`."""
    grant(broker_access.topic_bindings(topic_prefix))


def revoke_session() -> None:
    broker_access.revoke(KAFKA_ADMIN, _granted)
    _granted.clear()


def topic(name: str) -> str:
    """The test topic of a contract topic name."""
    return f"{TOPIC_PREFIX}{name}"


def reachable(url_or_hostport: str) -> bool:
    parsed = urlparse(url_or_hostport if "//" in url_or_hostport else f"tcp://{url_or_hostport}")
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_topics(names: Sequence[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topics(names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # already gone, or the broker is shutting down
            await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def read_topic(topic: str, expect: int, timeout: float = 30.0) -> list[object]:
    """Read a topic from the beginning until `expect` records arrived (or time runs out)."""
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_ADMIN, [topic], wait_seconds=5)
        assert parts, f"topic {topic} does not exist"
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        records: list[object] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def topic_size(topic: str) -> int:
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options())
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_ADMIN, [topic], wait_seconds=5)
        assert parts, f"topic {topic} does not exist"
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        return sum(ends[p] - starts[p] for p in parts)
    finally:
        await consumer.stop()


def with_database(url: str, database: str) -> str:
    """`url` (a service's or the administrator's) for another database of the same cluster."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def admin_url_of(database_url: str) -> str:
    """The administrator's URL for the database `database_url` names (e.g. an end-to-end one)."""
    return with_database(ADMIN_URL, urlsplit(database_url).path.lstrip("/"))


def role_password(role: str) -> str:
    """The shipped development password of a role: what its service uses without DB_PASSWORD."""
    return local_secret("db", role)


async def provision_schema(role: str, schema: str, admin: str | None = None) -> None:
    """`schema` for the service role `role` (identity, enrollment, ... or KERNEL_TEST_ROLE)."""
    await provision(admin or ADMIN_URL, role, role_password(role), schema)


def provision_schema_now(role: str, schema: str) -> None:
    """`provision_schema` for synchronous code, also inside a running event loop (e.g. settings
    built in a fixture): it runs on a loop of its own in another thread."""
    _run_elsewhere(provision_schema(role, schema))


def _run_elsewhere(job: Coroutine[Any, Any, None]) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, job).result()


async def service_pool(role: str, schema: str, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    """A pool as the service `role` would open it, on `schema` provisioned for it first."""
    await provision_schema(role, schema)
    return await create_pool(DATABASE_URL, schema, min_size, max_size, user=role, password=role_password(role))


async def connect_as(role: str, schema: str, database_url: str = DATABASE_URL) -> asyncpg.Connection:
    """One connection as `role` working in `schema` (already provisioned)."""
    return await asyncpg.connect(
        database_url, user=role, password=role_password(role), server_settings={"search_path": schema}
    )


async def drop_schemas(*schemas: str) -> None:
    for schema in schemas:
        await drop_schema(ADMIN_URL, schema)
