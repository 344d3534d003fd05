"""Each test gets its own PostgreSQL schema and its own topics, so tests never see each other."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from contracts import topics
from kernel.clock import utc_now
from kernel.db import migrate
from kernel.eventstore import EventStore
from services.notify.app import build as build_notify
from services.notify.settings import NotifySettings
from services.payment.app import build
from services.payment.settings import PaymentSettings
from tests.support.identity import RunningIdentity, running_identity
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_BOOTSTRAP,
    KERNEL_TEST_ROLE,
    create_topics,
    drop_schemas,
    group_prefix,
    provision_schema,
    service_pool,
    unique_name,
)
from tests.support.infra import topic as session_topic
from tests.support.notify import Notify, end_offsets
from tests.support.payment import APIV3_KEY, COUNTER_SECRET, Keys, Payment, make_keys


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = unique_name("t")
    yield name
    await drop_schemas(name)


@pytest.fixture
async def pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    """The kernel's tables in `schema`, as a service's role (KERNEL_TEST_ROLE) sees them."""
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 8)
    await migrate(pool, schema, [])
    yield pool
    await pool.close()


@pytest.fixture
def store(schema: str) -> EventStore:
    return EventStore(producer="testsvc", schema=schema)


@pytest.fixture
async def topic() -> str:
    name = unique_name("test.events")
    await create_topics([name, name + ".dlq"])
    return name


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Our own WeChat Pay platform key and certificate, and our own key pair standing for Alipay's."""
    return make_keys()


@pytest.fixture
async def payment(schema: str, keys: Keys) -> AsyncIterator[Payment]:
    settings = PaymentSettings(
        schema_name=schema,
        consumer_group_prefix=group_prefix("settle"),
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        payment_wechat_apiv3_key=SecretStr(APIV3_KEY),
        payment_wechat_platform_certificates={keys.serial: keys.certificate_pem},
        payment_alipay_public_key=keys.alipay.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        payment_bank_counter_secret=SecretStr(COUNTER_SECRET),
    )
    await provision_schema("payment", schema)
    app, runtime = build(settings)
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://payment") as http:
            yield Payment(runtime, http, schema, app.state.payment)
    finally:
        await runtime.stop()


# --- notify in-process (tests/integration/test_notify_*.py) ------------------------------------


@pytest.fixture
async def identity() -> AsyncIterator[RunningIdentity]:
    """identity's real key custody; its own events are published by the tests (see above)."""
    async with running_identity(relay_enabled=False) as running:
        yield running


@pytest.fixture
async def start_notify(schema: str, identity: RunningIdentity) -> AsyncIterator[Callable[..., Awaitable[Notify]]]:
    started: list[Notify] = []
    keys = identity.keys("notify")

    async def start(clock: Callable[[], datetime] = utc_now) -> Notify:
        settings = NotifySettings(
            schema_name=schema, consumer_group_prefix=group_prefix("it"), notify_sender_poll_seconds=0.1
        )
        await end_offsets(
            [
                session_topic(topics.IDENTITY_EVENTS),
                session_topic(topics.REVIEW_EVENTS),
                session_topic(topics.PAYMENT_EVENTS),
            ],
            group=settings.consumer_group("sms"),
        )
        app, runtime = build_notify(settings, clock, keys=keys)
        await provision_schema("notify", schema)
        await runtime.start()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify")
        started.append(Notify(settings, runtime, http, identity, keys))
        return started[-1]

    yield start
    for notify in started:
        await notify.http.aclose()
        await notify.runtime.stop()


@pytest.fixture
async def notify(start_notify: Callable[..., Awaitable[Notify]]) -> Notify:
    return await start_notify()
