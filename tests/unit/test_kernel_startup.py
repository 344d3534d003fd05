"""Starting while a dependency is away (kernel.startup, issue 10): capped backoff, one warning per
try without a traceback, a set-up error raised while someone watches the start, and an app that
answers at once (the real processes: tests/integration/test_start_without_dependencies.py)."""

import asyncio
import socket

import httpx
import pytest
import structlog

from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from kernel.settings import ServiceSettings
from kernel.startup import Backoff, dependency_unavailable, until_up


def closed_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.take() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_what_counts_as_a_dependency_away() -> None:
    assert dependency_unavailable(ConnectionRefusedError(111, "refused"))
    assert dependency_unavailable(TimeoutError())
    assert not dependency_unavailable(RuntimeError('schema "x" does not exist'))


async def test_a_dependency_away_is_retried_with_one_warning_per_try() -> None:
    tries: list[int] = []

    async def attempt() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionRefusedError(111, "refused")
        return "open"

    with structlog.testing.capture_logs() as logs:
        assert await until_up("database", attempt, Backoff(0.01, 0.02)) == "open"
    warnings = [e for e in logs if e["event"] == "dependency_unavailable"]
    assert len(warnings) == 2 and all(e["log_level"] == "warning" and "exc_info" not in e for e in warnings)
    assert [e["tries"] for e in logs if e["event"] == "dependency_reached"] == [3]


async def test_a_setup_error_fails_a_watched_start_and_is_retried_after() -> None:
    async def broken() -> None:
        raise RuntimeError("schema missing")

    with pytest.raises(RuntimeError, match="schema missing"):
        await until_up("database", broken, Backoff(0.01, 0.01), fail_fast=lambda: True)
    calls: list[int] = []

    async def fixed_later() -> int:
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError("schema missing")
        return 7

    with structlog.testing.capture_logs() as logs:
        assert await until_up("database", fixed_later, Backoff(0.01, 0.01)) == 7
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["dependency_setup_failed"]


async def test_a_runtime_whose_database_is_away_serves_at_once_and_stops_promptly() -> None:
    settings = ServiceSettings(service="probe", database_url=f"postgresql://127.0.0.1:{closed_port()}/probe")
    runtime = ServiceRuntime(settings)
    app = runtime.create_app("probe")

    @app.get("/v1/thing")
    async def thing() -> dict[str, str]:
        return {"never": "reached"}  # pragma: no cover

    await asyncio.wait_for(runtime.start(), 10)  # returns while the database is still away
    try:
        assert runtime.starting and not runtime.ready
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            refused = await http.get("/v1/thing")
        assert ready.status_code == 503 and ready.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        assert ready.json()["code"] == "not_ready" and ready.json()["waiting_for"] == "database"
        assert ready.headers["retry-after"] == "5"
        assert refused.status_code == 503 and refused.json()["code"] == "service_unavailable"
        assert refused.headers["retry-after"] == "5" and refused.headers["x-frame-options"] == "DENY"
    finally:
        await asyncio.wait_for(runtime.stop(), 10)
    assert not runtime.starting
