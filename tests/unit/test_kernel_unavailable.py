"""PostgreSQL away (issue 10, "Resilience bugs"): a request that meets it is answered 503
problem+json with Retry-After, and the log gets one warning per outage instead of a traceback per
request; any other fault stays a 500 `internal_error`."""

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI

from kernel import web
from kernel.db import database_unavailable
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.web import install_problem_handlers

AWAY: list[BaseException] = [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 55432)"),
    asyncpg.InterfaceError("pool is closed"),
]


def app_raising(exc: BaseException) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/thing")
    async def thing() -> dict[str, str]:
        raise exc

    return app


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/v1/thing")


@pytest.mark.parametrize("exc", AWAY, ids=lambda e: type(e).__name__)
async def test_a_database_away_is_503_with_retry_after(exc: BaseException) -> None:
    answer = await get(app_raising(exc))
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert answer.headers["retry-after"] == str(web.RETRY_AFTER_SECONDS)
    body = answer.json()
    assert body["code"] == "service_unavailable" and body["status"] == 503
    assert any("\u4e00" <= c <= "\u9fff" for c in body["detail"])


async def test_a_wrapped_cause_counts_and_a_bug_stays_a_500() -> None:
    try:
        try:
            raise ConnectionResetError(104, "reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("while loading the stream") from inner
    except RuntimeError as outer:
        wrapped = outer
    assert database_unavailable(wrapped)
    assert not database_unavailable(KeyError("a bug"))
    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    assert not database_unavailable(busy)
    answer = await get(app_raising(KeyError("a bug")))
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    assert "retry-after" not in answer.headers


async def test_an_outage_logs_one_warning_not_one_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "_OUTAGE", web._Quiet(60.0))
    app = app_raising(asyncpg.exceptions.CannotConnectNowError("starting up"))
    with structlog.testing.capture_logs() as logs:
        for _ in range(20):
            assert (await get(app)).status_code == 503
    warnings = [entry for entry in logs if entry["event"] == "database_unavailable"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert not [entry for entry in logs if entry["event"] == "unhandled_error"]
