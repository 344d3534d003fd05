"""The server every service runs (kernel.server): uvloop and httptools (issue 10, item 5), with the
bounds issue 9 gave it under h11 kept: a head over 16 KiB is refused, a normal one is served."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kernel.server import MAX_HEAD_BYTES, server_config
from kernel.settings import ServiceSettings
from kernel.web import install_http_shell, install_problem_handlers
from tests.support.processes import free_port


def probe_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_http_shell(app, body_max_bytes=64 * 1024, body_timeout_seconds=1.0, body_min_rate=32 * 1024)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "好"}

    return app


@pytest.fixture
async def port() -> AsyncIterator[int]:
    settings = ServiceSettings(service="probe", http_head_timeout_seconds=1.0)
    config = server_config(probe_app(), settings, host="127.0.0.1", port=free_port(), lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.02)
    yield config.port
    server.should_exit = True
    await asyncio.wait_for(task, 15)


def test_services_run_on_uvloop_and_httptools() -> None:
    config = server_config(FastAPI(), ServiceSettings(service="probe"))
    assert config.loop == "uvloop"
    assert isinstance(config.http, type) and issubclass(config.http, HttpToolsProtocol)


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_head_within_the_bound_is_served(port: int) -> None:
    filler = "x" * (MAX_HEAD_BYTES // 2)
    answer = await exchange(
        port, f"GET /ping HTTP/1.1\r\nHost: t\r\nX-Filler: {filler}\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.endswith('{"pong":"好"}'.encode()) and b"x-content-type-options: nosniff" in answer.lower()


async def test_a_head_over_the_bound_is_refused_and_closed(port: int) -> None:
    filler = "x" * 1024
    headers = "".join(f"X-Filler-{i}: {filler}\r\n" for i in range(MAX_HEAD_BYTES // 1024 + 1))
    answer = await exchange(port, f"GET /ping HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]  # and the connection closed: read() returned
