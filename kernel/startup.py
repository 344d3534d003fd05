"""Starting while PostgreSQL or Kafka is away (issue 10, "Resilience bugs found under faults").

A service process serves at once: /healthz answers, /readyz says 503 `not_ready` and what it
waits for, every other route 503 `service_unavailable` with Retry-After (`StartingGate`), while
the runtime (kernel.runtime) retries each dependency with capped exponential backoff
(`until_up`). A refused request has touched nothing, so nothing is lost: the caller retries.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from kernel.db import database_unavailable
from kernel.logging import get_logger
from kernel.problems import PROBLEM_MEDIA_TYPE, Problem

log = get_logger(__name__)

T = TypeVar("T")

RETRY_AFTER_SECONDS = 5
# Routes that answer before the dependencies do: liveness, readiness, the API's description.
OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
_WAITING_TEXT = {"database": "数据库", "kafka": "消息服务"}


def dependency_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says a dependency cannot be reached now (retry later), not that something is
    wrong with us or with its set-up (a schema not provisioned, a broken migration)."""
    return database_unavailable(exc) or isinstance(exc, KafkaError | OSError | TimeoutError)


class Backoff:
    """Capped exponential delays: first, 2×first, … up to `cap` seconds."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = min(first, cap)
        self.cap = cap
        self.next = self.first

    def take(self) -> float:
        delay = self.next
        self.next = min(self.next * 2, self.cap)
        return delay


async def until_up(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    on_waiting: Callable[[], None] = lambda: None,
    fail_fast: Callable[[], bool] = lambda: False,
) -> T:
    """`attempt()` until it works. A dependency away is retried after a backoff, with one warning
    per try (no traceback: it is not a bug). Another error is raised while `fail_fast()` holds (a
    start that an operator watches fails loudly), else logged with its traceback and retried too
    (provisioning may come later). `on_waiting` is told each time a try failed."""
    tries = 0
    while True:
        tries += 1
        try:
            result = await attempt()
        except Exception as exc:
            expected = dependency_unavailable(exc)
            if not expected and fail_fast():
                raise
            on_waiting()
            delay = backoff.take()
            if expected:
                log.warning(
                    "dependency_unavailable", dependency=what, error=repr(exc)[:300], tries=tries, retry_in=delay
                )
            else:
                log.exception("dependency_setup_failed", dependency=what, tries=tries, retry_in=delay)
            await asyncio.sleep(delay)
            continue
        if tries > 1:
            log.info("dependency_reached", dependency=what, tries=tries)
        return result


def not_ready(waiting_for: str | None) -> Problem:
    """The /readyz answer of a service still waiting for a dependency."""
    text = _WAITING_TEXT.get(waiting_for or "", "依赖服务")
    return Problem(
        "not_ready",
        f"服务正在启动，正在等待{text}连接，请稍后再试。",
        503,
        waiting_for=waiting_for,
        retry_after=RETRY_AFTER_SECONDS,
    )


def _unavailable_answer(path: str) -> JSONResponse:
    problem = Problem("service_unavailable", "系统暂时无法处理您的请求，请稍后再试。", 503)
    return JSONResponse(
        problem.body(instance=path),
        status_code=503,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class StartingGate:
    """Pure ASGI: until `ready()`, every request but OPERATIONAL_PATHS is answered 503
    `service_unavailable` with Retry-After, before any route runs (routes assume the pool and the
    service layers exist)."""

    def __init__(self, app: ASGIApp, ready: Callable[[], bool]) -> None:
        self.app = app
        self.ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or self.ready() or path in OPERATIONAL_PATHS:
            await self.app(scope, receive, send)
            return
        await _unavailable_answer(path)(scope, receive, send)
