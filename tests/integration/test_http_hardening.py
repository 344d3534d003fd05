"""The probes of issue 9 ("Bounded requests", "Headers and text") against the five services'
real apps: in-process for the headers, docs and metrics, and behind a real uvicorn (the
configuration `python -m services.<name>` runs, kernel.server) for what only a socket shows:
slow clients, chunked bodies, connections closed."""

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from kernel.runtime import ServiceRuntime
from kernel.server import server_config, start_metrics_server
from kernel.settings import ServiceSettings
from kernel.web import CORRELATION_HEADER, MAX_FIELD_ERRORS
from services.enrollment.app import build as build_enrollment
from services.enrollment.settings import EnrollmentSettings
from services.identity.app import build as build_identity
from services.identity.settings import IdentitySettings
from services.notify.app import build as build_notify
from services.notify.settings import NotifySettings
from services.payment.app import build as build_payment
from services.payment.settings import PaymentSettings
from services.review.app import build as build_review
from services.review.settings import ReviewSettings
from tests.support.apps import isolated, running
from tests.support.processes import free_port

BUILDS: dict[str, Callable[[], tuple[FastAPI, ServiceRuntime]]] = {
    "identity": lambda: build_identity(IdentitySettings(**isolated("identity"))),  # type: ignore[arg-type]
    "enrollment": lambda: build_enrollment(EnrollmentSettings(**isolated("enrollment"))),  # type: ignore[arg-type]
    "review": lambda: build_review(ReviewSettings(**isolated("review"))),  # type: ignore[arg-type]
    "payment": lambda: build_payment(PaymentSettings(**isolated("payment"))),  # type: ignore[arg-type]
    "notify": lambda: build_notify(NotifySettings(**isolated("notify"))),  # type: ignore[arg-type]
}
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
MB = 1024 * 1024


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: str(uuid4()) if m[0].endswith("_id}") else "x", path)


@pytest.mark.parametrize("service", list(BUILDS))
async def test_every_route_answers_with_the_security_headers_and_no_docs_nor_metrics(service: str) -> None:
    """Every route of the running service, called without a token and with an empty body."""
    app, runtime = BUILDS[service]()
    calls = [
        (method.upper(), concrete(path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(calls) >= 3
    async with running(app, runtime) as http:
        for method, url in [*calls, ("GET", "/healthz"), ("GET", "/nowhere")]:
            answer = await http.request(method, url, json={} if method != "GET" else None)
            for name, value in SECURITY_HEADERS.items():
                assert answer.headers.get(name) == value, (method, url, answer.status_code, name)
            assert UUID(answer.headers[CORRELATION_HEADER])
        for path in ("/metrics", "/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await http.get(path)).status_code == 404, path
        schema = await http.get("/openapi.json")  # development: the document, no page around it
        assert schema.status_code == 200 and schema.headers["content-type"] == "application/json"
        assert not re.search(r"cdn|unpkg|jsdelivr|<script", schema.text, re.I)


async def test_no_openapi_document_outside_development() -> None:
    settings = ServiceSettings(service="probe").model_copy(update={"environment": "production"})
    app = ServiceRuntime(settings).create_app("probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.get("/healthz")).status_code == 200


async def test_metrics_are_on_their_own_port_only() -> None:
    port = free_port()
    stop = start_metrics_server(ServiceSettings(service="probe", metrics_port=port))
    try:
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop()
    assert scraped.status_code == 200 and "flexenroll_relay_events_published_total" in scraped.text
    assert ServiceSettings(service="identity").metrics_http_port() == 9001
    assert ServiceSettings(service="notify", port=18005).metrics_http_port() == 19005


async def test_a_correlation_id_that_is_not_a_uuid_is_replaced() -> None:
    app, _ = build_identity()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        given = str(uuid4())
        assert (await http.get("/healthz", headers={CORRELATION_HEADER: given})).headers[CORRELATION_HEADER] == given
        hostile = "https://evil.example/<script>"
        made = (await http.get("/healthz", headers={CORRELATION_HEADER: hostile})).headers[CORRELATION_HEADER]
        assert made != hostile and UUID(made)


async def test_unknown_keys_get_a_small_answer_from_a_running_service() -> None:
    app, runtime = build_identity(IdentitySettings(**isolated("identity")))  # type: ignore[arg-type]
    async with running(app, runtime) as http:
        huge = json.dumps({"phone": "13800000000", **{f"unknown{i}": 1 for i in range(200_000)}}).encode()
        assert len(huge) > 3 * MB
        refused = await http.post("/v1/users", content=huge, headers={"content-type": "application/json"})
        assert refused.status_code == 413 and refused.json()["code"] == "body_too_large"
        assert len(refused.content) < 1024
        within = {"phone": "13800000000", **{f"{'k' * 250}{i}": 1 for i in range(200)}}
        invalid = await http.post("/v1/users", json=within)
        assert invalid.status_code == 422 and len(invalid.json()["errors"]) <= MAX_FIELD_ERRORS
        assert len(invalid.content) < 8 * 1024


# --- behind a real server ------------------------------------------------------------------------

TIMEOUT = 1.0


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """`app` behind uvicorn as a service runs it (kernel.server), with 1-second bounds; no
    lifespan: nothing here needs the database."""
    settings = ServiceSettings(service="probe", http_body_timeout_seconds=TIMEOUT, http_head_timeout_seconds=TIMEOUT)
    port = free_port()
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "server did not start"
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def identity_port() -> AsyncIterator[int]:
    app, _ = build_identity(IdentitySettings(http_body_timeout_seconds=TIMEOUT))
    async with served(app) as port:
        yield port


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    return await asyncio.wait_for(reader.read(), within)


def problem_code(answer: bytes) -> str:
    """The `code` of the problem+json an HTTP/1.1 answer carries."""
    _, _, body = answer.partition(b"\r\n\r\n")
    return str(json.loads(body)["code"])


HEAD = "POST /v1/sessions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"


async def test_a_half_sent_body_is_cut_after_the_timeout(identity_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", identity_port)
    started = time.monotonic()
    writer.write(f"{HEAD}Content-Length: 1000\r\n\r\n".encode() + b'{"phone": "1380')
    await writer.drain()
    answer = await read_until_closed(reader, 10)
    elapsed = time.monotonic() - started
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408") and problem_code(answer) == "request_timeout", answer[:200]
    assert elapsed < TIMEOUT + 2, elapsed


async def test_a_trickled_head_is_cut_after_the_timeout(identity_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", identity_port)
    started = time.monotonic()
    writer.write(b"POST /v1/sessions HTTP/1.1\r\nHost: te")
    await writer.drain()
    assert await read_until_closed(reader, 10) == b""
    assert time.monotonic() - started < TIMEOUT + 2
    writer.close()


async def test_a_declared_100_mb_body_is_refused_at_once(identity_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", identity_port)
    started = time.monotonic()
    writer.write(f"{HEAD}Content-Length: {100 * MB}\r\n\r\n".encode() + b"{" * 1024)
    await writer.drain()
    answer = await read_until_closed(reader, 10)  # and the connection closes: nothing more is read
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413") and problem_code(answer) == "body_too_large", answer[:300]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 2


async def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(identity_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", identity_port)
    writer.write(f"{HEAD}Transfer-Encoding: chunked\r\n\r\n".encode())
    answer = asyncio.create_task(read_until_closed(reader, 30))
    chunk = b"x" * 16 * 1024
    sent = 0
    try:
        while sent < 100 * MB and not answer.done():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await asyncio.wait_for(writer.drain(), 5)
            sent += len(chunk)
    except (ConnectionError, TimeoutError):
        pass  # the server hung up on us
    refusal = await answer
    writer.close()
    assert refusal.startswith(b"HTTP/1.1 413") and problem_code(refusal) == "body_too_large", refusal[:300]
    assert sent < 20 * MB, sent  # what the socket buffers took before the refusal came back


async def test_healthz_answers_while_a_large_body_is_refused(identity_port: int) -> None:
    huge = json.dumps({f"unknown{i}": 1 for i in range(200_000)}).encode()

    def send_huge() -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", identity_port), timeout=10) as s:
            s.sendall(f"{HEAD}Transfer-Encoding: chunked\r\n\r\n".encode())
            try:
                for i in range(0, len(huge), 8192):
                    part = huge[i : i + 8192]
                    s.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # refused and closed while we were still sending: what we expect
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            return len(answer), answer

    refusal = asyncio.create_task(asyncio.to_thread(send_huge))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{identity_port}") as http:
        for _ in range(5):
            started = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            assert time.monotonic() - started < 0.5
    size, answer = await refusal
    assert answer.startswith(b"HTTP/1.1 413") and size < 2048, answer[:300]
