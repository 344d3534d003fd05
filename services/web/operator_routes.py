"""The operators' pages under /ops: dead letters and consumer lag, one application's history across
services, and payment exceptions and refunds.

Dead letters, lag and history come from the broker, read as web's own read-only principal `web`
(ops/broker_access.py: READ and DESCRIBE on the topics, DESCRIBE on the groups, no WRITE). The
/ops page keeps one admin client and one group-less consumer for the process, opened at the first
visit (each new client costs a SASL/SCRAM log-in and a metadata round trip) and closed at stop; a
failure drops them, and the next visit opens new ones. While the broker is away a page says so
instead of failing. The payment lists come from payment's API with the operator's own token."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from contracts.topics import SERVICES, dlq_topic
from kernel.kafka import KafkaAccess, kafka_access
from kernel.logging import get_logger
from kernel.web import correlation_id
from ops.history import application_history
from ops.kafka_ops import lag_of
from services.web.ops_views import (
    CHANNEL_LABELS,
    EXCEPTION_LABELS,
    DeadLetters,
    GroupLag,
    dead_letter_counts,
    history_rows,
    lag_by_group,
    page_of,
)
from services.web.pages import render
from services.web.session import Visitor, signed_in
from services.web.settings import WebSettings

log = get_logger(__name__)

BROKER_SECONDS = 8.0  # a page waits this long for the broker, then says it is away
HISTORY_SECONDS = 60.0  # the history reads every events topic from its beginning
PAGE_SIZE = 20
BROKER_AWAY = "暂时无法连接消息队列（Kafka），以下数据无法显示，请稍后刷新重试。"

Operator = Annotated[Visitor, signed_in("operator")]


class BrokerReader:
    """One admin client and one consumer (no group: it never joins nor commits) for the process."""

    def __init__(self, access: KafkaAccess) -> None:
        self._access = access
        self._lock = asyncio.Lock()
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def _open(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is None:
            admin = AIOKafkaAdminClient(**self._access.options(), client_id="web-ops")
            consumer = AIOKafkaConsumer(**self._access.options(), client_id="web-ops", enable_auto_commit=False)
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await _quietly_close(admin, consumer)
                raise
            self._clients = (admin, consumer)
        return self._clients

    async def close(self) -> None:
        clients, self._clients = self._clients, None
        if clients:
            await _quietly_close(*clients)

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[tuple[AIOKafkaAdminClient, AIOKafkaConsumer]]:
        """The clients, one page at a time; any failure closes them for the next page to reopen."""
        async with self._lock:
            try:
                async with asyncio.timeout(BROKER_SECONDS):
                    yield await self._open()
            except BaseException:
                await self.close()
                raise

    async def overview(
        self, topic_of: dict[str, str], group_prefix: str, topic_prefix: str
    ) -> tuple[list[DeadLetters], list[GroupLag]]:
        async with self.clients() as (admin, consumer):
            known = {
                t["topic"]: [p["partition"] for p in t["partitions"]]
                for t in await admin.describe_topics()  # every topic web may see: naming one could create it
                if t["error_code"] == 0
            }
            parts = [TopicPartition(t, p) for t in topic_of.values() for p in known.get(t, ())]
            starts = await consumer.beginning_offsets(parts) if parts else {}
            ends = await consumer.end_offsets(parts) if parts else {}
            letters = dead_letter_counts(
                topic_of,
                {(tp.topic, tp.partition): o for tp, o in starts.items()},
                {(tp.topic, tp.partition): o for tp, o in ends.items()},
            )
            return letters, lag_by_group(await lag_of(admin, consumer, group_prefix), group_prefix, topic_prefix)


async def _quietly_close(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
    for stop in (consumer.stop, admin.close):
        with contextlib.suppress(Exception):
            async with asyncio.timeout(BROKER_SECONDS):
                await stop()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nothing is opened at start (web starts while the broker is away); what /ops opened is closed."""
    yield
    reader: BrokerReader | None = getattr(app.state, "broker_reader", None)
    if reader is not None:
        await reader.close()


router = APIRouter(lifespan=lifespan)


def _settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def _reader(request: Request) -> BrokerReader:
    state = request.app.state
    if getattr(state, "broker_reader", None) is None:
        state.broker_reader = BrokerReader(kafka_access(_settings(request)))
    reader: BrokerReader = state.broker_reader
    return reader


@router.get("/ops", include_in_schema=False)
async def overview(request: Request, visitor: Operator) -> Response:
    settings = _settings(request)
    topic_of = {service: settings.topic(dlq_topic(service)) for service in SERVICES}
    letters: list[DeadLetters] = []
    lags: list[GroupLag] = []
    away = False
    try:
        letters, lags = await _reader(request).overview(topic_of, settings.consumer_group_prefix, settings.topic_prefix)
    except Exception as exc:  # the broker away, refusing, or too slow: the page still answers
        log.warning("ops_broker_unavailable", page="/ops", error=type(exc).__name__)
        away = True
    return render(
        request,
        visitor,
        "ops/overview.html",
        letters=letters,
        lags=lags,
        away=away,
        away_text=BROKER_AWAY,
        group_prefix=settings.consumer_group_prefix,
        topic_prefix=settings.topic_prefix,
        lagging=sum(1 for row in lags if row.lagging),
    )


@dataclass(frozen=True)
class HistoryQuery:
    given: str
    application_id: UUID | None
    error: str | None


def _parse_application_id(given: str) -> HistoryQuery:
    given = given.strip()
    if not given:
        return HistoryQuery("", None, None)
    try:
        return HistoryQuery(given, UUID(given), None)
    except ValueError:
        return HistoryQuery(given, None, "申请编号格式不正确，应为 36 位的编号（如 0b6f…-…）。")


@router.get("/ops/history", include_in_schema=False)
async def history(
    request: Request, visitor: Operator, application_id: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    settings = _settings(request)
    query = _parse_application_id(application_id)
    rows, away = [], False
    if query.application_id is not None:
        try:
            async with asyncio.timeout(HISTORY_SECONDS):
                entries = await application_history(
                    kafka_access(settings), query.application_id, topic_prefix=settings.topic_prefix
                )
            rows = history_rows(entries, settings.topic_prefix)
        except Exception as exc:
            log.warning("ops_broker_unavailable", page="/ops/history", error=type(exc).__name__)
            away = True
    return render(
        request,
        visitor,
        "ops/history.html",
        query=query,
        rows=rows,
        away=away,
        away_text=BROKER_AWAY,
        status_code=422 if query.error else 200,
    )


Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def _listed(request: Request, visitor: Visitor, path: str, key: str, offset: int) -> tuple[list[Any], Any]:
    answer = await request.app.state.apis.json(
        "payment",
        "GET",
        path,
        token=visitor.bearer(),
        correlation_id=correlation_id(request),
        params={"limit": PAGE_SIZE + 1, "offset": offset},
    )
    return page_of(answer[key], offset, PAGE_SIZE)


@router.get("/ops/payments", include_in_schema=False)
async def payments(
    request: Request, visitor: Operator, exceptions_from: Offset = 0, refunds_from: Offset = 0
) -> Response:
    exceptions, exceptions_page = await _listed(
        request, visitor, "/v1/reconciliation/exceptions", "exceptions", exceptions_from
    )
    refunds, refunds_page = await _listed(request, visitor, "/v1/refunds", "refunds", refunds_from)
    return render(
        request,
        visitor,
        "ops/payments.html",
        exceptions=exceptions,
        exceptions_page=exceptions_page,
        refunds=refunds,
        refunds_page=refunds_page,
        refunds_fen=sum(int(r["amount_fen"]) for r in refunds),
        channels=CHANNEL_LABELS,
        codes=EXCEPTION_LABELS,
    )
