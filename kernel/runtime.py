"""One service process: database, migrations, outbox relay, Kafka consumers and the HTTP app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from contracts.access import may_subscribe
from contracts.topics import dlq_topic, events_topic
from kernel.auth import TokenGuard
from kernel.consumer import Handler, IdempotentConsumer, subscribe
from kernel.db import Migration, create_pool, migrate
from kernel.eventstore import EventStore
from kernel.kafka import kafka_access
from kernel.logging import configure_logging, get_logger
from kernel.relay import OutboxRelay, new_producer
from kernel.revocation import RevocationList, http_fetcher, refresh_revocations
from kernel.settings import ServiceSettings
from kernel.startup import Backoff, StartingGate, not_ready, until_up
from kernel.web import install_http_shell, install_operational_routes, install_problem_handlers

log = get_logger(__name__)

T = TypeVar("T")


class Storage(Protocol):
    """Where a service layer keeps its data: its event store, and the pool (open once the
    service has started; a request or a message never arrives before)."""

    @property
    def store(self) -> EventStore: ...

    @property
    def pool(self) -> asyncpg.Pool: ...


@dataclass(frozen=True)
class OpenStorage:
    """Storage already open: for operators' commands and tests that hold a pool themselves."""

    pool: asyncpg.Pool
    store: EventStore


@dataclass(frozen=True)
class StoreOnly:
    """Storage without a pool: for a test of handlers that must work only on the consumer's
    connection (one that reaches for the pool fails loudly)."""

    store: EventStore

    @property
    def pool(self) -> asyncpg.Pool:
        raise AssertionError("this code must work on the connection it was given, not on the pool")


class ServiceLayer:
    """Base of every `<Name>Service`: built in `app.py` with the runtime as its storage, before the
    runtime starts, so that handlers and routes can be given the same instance."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @property
    def pool(self) -> asyncpg.Pool:
        return self.storage.pool

    @property
    def store(self) -> EventStore:
        return self.storage.store


@dataclass(frozen=True)
class Subscription:
    """A consumer group of this service: the topics it reads and a handler per event type.

    `purpose` names the group: the Kafka group id is "<prefix><service>.<purpose>"."""

    purpose: str
    topics: Sequence[str]
    handlers: dict[str, Handler]


async def cancel_and_wait(task: "asyncio.Task[Any]", grace_seconds: float = 10.0) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if it still runs after
    `grace_seconds`. A cancellation that arrives just as the awaited thing completes can be lost
    inside a library (Python 3.11's `asyncio.wait_for` then returns the result instead), and one
    lost cancellation of a loop that runs forever held a stop forever. The grace is long: a task
    that ends properly may need a while (giving its connection back to the pool), and cancelling
    that clean-up once more left a connection half-released (seen: the pool's close then failed)."""
    task.cancel()
    while not task.done():
        await asyncio.wait({task}, timeout=grace_seconds)
        if not task.done():
            log.warning("task_ignored_cancellation", task=task.get_name())
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()  # retrieved: its end was wanted, whatever it was


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    migrations: Sequence[Migration] = ()
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[Callable[["ServiceRuntime"], Any]] = ()
    # Who refuses revoked tokens: by default a copy of identity's list, refreshed in the
    # background from IDENTITY_URL (kernel.revocation); identity sets a guard on its own table.
    token_guard: TokenGuard = field(default_factory=RevocationList)
    # Tests: reach identity's list in-process instead of over the network.
    revocations_transport: httpx.AsyncBaseTransport | None = None
    store: EventStore = field(init=False)
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    _broker: KafkaBroker | None = field(default=None, init=False)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list, init=False)
    _coming_up: asyncio.Task[None] | None = field(default=None, init=False)
    _waiting_for: str | None = field(default=None, init=False)
    _ready: bool = field(default=False, init=False)
    relay: OutboxRelay | None = field(default=None, init=False)
    _started_hooks: list[Callable[[], Any]] = field(default_factory=list, init=False)
    _stopped_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list, init=False)

    def on_started(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Run `hook` once the pool and producer exist (wire service layers to them)."""
        self._started_hooks.append(hook)
        return hook

    def on_stopped(self, hook: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Await `hook` when the runtime stops, after consumers and jobs (close the service's clients)."""
        self._stopped_hooks.append(hook)
        return hook

    def __post_init__(self) -> None:
        self.store = EventStore(producer=self.settings.service, schema=self.settings.db_schema)

    def check_subscriptions(self) -> None:
        """Who reads what is defined once, in contracts.access; the broker's ACLs come from it too,
        so a subscription it does not list would only fail later, as an authorisation error.
        Checked at start: app.py sets the subscriptions after building the runtime."""
        for sub in self.subscriptions:
            if refused := [t for t in sub.topics if not may_subscribe(self.settings.service, t)]:
                raise ValueError(
                    f"{self.settings.service} may not subscribe to {', '.join(refused)} "
                    "(contracts.access.SUBSCRIBES lists what each service reads)"
                )

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "runtime not started"
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "runtime not started"
        return self._producer

    @property
    def ready(self) -> bool:
        """Whether everything runs (pool, migrations, producer, relay, consumers, jobs)."""
        return self._ready

    @property
    def starting(self) -> bool:
        """Started but still waiting for a dependency: the app answers 503 (kernel.startup)."""
        return self._coming_up is not None and not self._ready

    async def start(self) -> None:
        """Bring the service up. With its dependencies there, returns once everything runs. With
        PostgreSQL or Kafka away, returns as soon as that is known and keeps trying in the
        background, so that the process serves at once: 503 until ready (kernel.startup).

        An error that is not an outage (a schema not provisioned, a broken migration) fails the
        start, and a start that fails closes what it opened (a relay left running on a service
        that never started would publish for nobody)."""
        self.check_subscriptions()
        waiting = asyncio.Event()
        self._coming_up = asyncio.create_task(self._come_up(waiting), name=f"{self.settings.service}-start")
        told = asyncio.create_task(waiting.wait())
        try:
            await asyncio.wait({self._coming_up, told}, return_when=asyncio.FIRST_COMPLETED)
            if self._coming_up.done():
                self._coming_up.result()
        except BaseException:
            await self.stop()
            raise
        finally:
            told.cancel()

    async def _come_up(self, waiting: asyncio.Event) -> None:
        s = self.settings

        async def up(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
            self._waiting_for = what
            backoff = Backoff(0.5, s.startup_retry_max_seconds)
            return await until_up(
                what, attempt, backoff, on_waiting=waiting.set, fail_fast=lambda: not waiting.is_set()
            )

        try:
            self._pool = await up("database", self._open_pool)
            await up("database", lambda: migrate(self.pool, s.db_schema, self.migrations))
            self._producer = await up("kafka", self._open_producer)
            for hook in self._started_hooks:
                hook()
            self._start_relay()
            if s.consumers_enabled and self.subscriptions:
                self._broker = await up("kafka", self._open_broker)
            self._start_jobs()
        except Exception:
            if waiting.is_set():  # nobody awaits this task any more: say it here
                log.exception("service_start_failed")
            raise
        self._waiting_for = None
        self._ready = True
        log.info("service_started", port=s.http_port())

    async def _open_pool(self) -> asyncpg.Pool:
        s = self.settings
        return await create_pool(
            s.database_url, s.db_schema, s.db_pool_min, s.db_pool_max, user=s.db_role, password=s.db_secret()
        )

    async def _open_producer(self) -> AIOKafkaProducer:
        producer = new_producer(kafka_access(self.settings), client_id=self.settings.service)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    async def _open_broker(self) -> KafkaBroker:
        """A FastStream broker with every subscription; a fresh one per try (one whose start
        failed is not started again)."""
        s = self.settings
        access = kafka_access(s)
        broker = KafkaBroker(
            access.bootstrap, security=access.security(), client_id=f"{s.service}-consumer", logger=None
        )
        for sub in self.subscriptions:
            consumer = IdempotentConsumer(
                name=s.consumer_group(sub.purpose),
                pool=self.pool,
                producer=self.producer,
                dlq_topic=s.topic(dlq_topic(s.service)),
                handlers=sub.handlers,
                max_attempts=s.consumer_max_attempts,
                topic_prefix=s.topic_prefix,
            )
            topics = [s.topic(t) for t in sub.topics]
            subscribe(broker, consumer, topics, batch_max=s.batch_max, batch_wait_ms=s.batch_wait_ms)
        try:
            await broker.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await broker.stop()
            raise
        return broker

    def _start_relay(self) -> None:
        s = self.settings
        if not s.relay_enabled:
            return
        self.relay = OutboxRelay(
            self.pool,
            self.store,
            self.producer,
            s.topic(events_topic(s.service)),
            batch_max=s.batch_max,
            publish_timeout_seconds=s.relay_publish_timeout_seconds,
        )
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{s.service}-relay"))

    def _start_jobs(self) -> None:
        s = self.settings
        if isinstance(self.token_guard, RevocationList):
            fetch = http_fetcher(s.identity_url, self.revocations_transport)
            refresh = refresh_revocations(self.token_guard, fetch, s.token_revocations_refresh_seconds)
            self._tasks.append(asyncio.create_task(refresh, name=f"{s.service}-token-revocations"))
        for job in self.background:
            self._tasks.append(asyncio.create_task(job(self), name=getattr(job, "__name__", "job")))

    async def stop(self) -> None:
        self._ready = False
        if self._coming_up is not None:  # still waiting for a dependency: stop waiting
            await cancel_and_wait(self._coming_up)
            self._coming_up = None
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        for stopped in self._stopped_hooks:
            with contextlib.suppress(Exception):
                await stopped()
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()

    async def readiness(self) -> dict[str, bool]:
        """/readyz: what answers. While the start waits for a dependency, 503 `not_ready` naming it."""
        if self.starting:
            raise not_ready(self._waiting_for)
        checks = {"database": False, "kafka": False}
        with contextlib.suppress(Exception):
            checks["database"] = await self.pool.fetchval("SELECT true") is True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.producer.client.fetch_all_metadata()
            checks["kafka"] = True
        return checks

    def create_app(self, title: str, description: str = "", **kwargs: Any) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        # No /docs nor /redoc (FastAPI's pages load scripts from a CDN); the OpenAPI document only in
        # development (docs/service-anatomy.md, "HTTP shell").
        docs: dict[str, Any] = {
            "docs_url": None,
            "redoc_url": None,
            "openapi_url": "/openapi.json" if self.settings.environment == "development" else None,
        }
        app = FastAPI(title=title, description=description, version="1", lifespan=lifespan, **{**docs, **kwargs})
        app.state.runtime = self
        # Bearer tokens (kernel.auth): verified with identity's public keys, for this service only.
        app.state.token_keys = self.settings.public_keys()
        app.state.token_audience = self.settings.service
        install_problem_handlers(app)
        # Innermost of the middlewares (added first): its refusals get the shell's headers too.
        app.add_middleware(StartingGate, ready=lambda: not self.starting)
        install_http_shell(
            app,
            body_max_bytes=self.settings.http_body_max_bytes,
            body_timeout_seconds=self.settings.http_body_timeout_seconds,
            body_min_rate=self.settings.http_body_min_rate,
        )
        install_operational_routes(app, self.readiness)
        return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Entry point body of every service: JSON logs, then uvicorn on the service's port and
    /metrics on the metrics port (kernel.server)."""
    from kernel import server

    configure_logging(settings.service, settings.log_level, settings.log_json)
    server.run(app, settings)
