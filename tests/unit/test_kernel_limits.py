"""The HTTP shell's bounds and headers (kernel.asgi, kernel.web), on a small app in-process: bodies
bounded in size while they stream and in time, validation errors bounded, correlation ids
accepted only as UUIDs, security headers on every answer (issue 9, "Bounded requests",
"Headers and text")."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.datastructures import UploadFile

from kernel.problems import PROBLEM_MEDIA_TYPE, Problem
from kernel.web import (
    CORRELATION_HEADER,
    MAX_FIELD_ERRORS,
    StrictBody,
    correlation_id,
    declare_body_limit,
    install_http_shell,
    install_problem_handlers,
)

LIMIT = 64 * 1024
UPLOAD_LIMIT = 256 * 1024
CHUNK = 16 * 1024
MB = 1024 * 1024


class Item(StrictBody):
    name: str


def shell_app(timeout: float = 10.0, min_rate: int = 32 * 1024) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_http_shell(app, body_max_bytes=LIMIT, body_timeout_seconds=timeout, body_min_rate=min_rate)

    @app.post("/v1/items")
    async def create(item: Item, request: Request) -> dict[str, str]:
        return {"name": item.name, "correlation_id": correlation_id(request)}

    @app.put("/v1/uploads/{kind}")
    async def upload(kind: str, request: Request) -> dict[str, int]:
        form = await request.form()
        file = form.get("file")
        assert isinstance(file, UploadFile)
        return {"size": len(await file.read())}

    @app.post("/v1/raw")
    async def raw(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    declare_body_limit(app, "/v1/uploads/{kind}", UPLOAD_LIMIT, refusal=Problem("upload_too_large", "太大。", 413))
    return app


@dataclass
class Exchange:
    """One request sent as raw ASGI messages: what the app pulled, what it answered."""

    pulled: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(
    app: FastAPI,
    method: str,
    path: str,
    parts: Iterable[bytes] | AsyncIterator[bytes],
    headers: dict[str, str] | None = None,
) -> Exchange:
    result = Exchange()
    if isinstance(parts, AsyncIterator):
        stream = parts
    else:

        async def as_stream() -> AsyncIterator[bytes]:
            for part in parts:
                yield part

        stream = as_stream()
    ended = False

    async def receive() -> dict[str, Any]:
        nonlocal ended
        if ended:
            await asyncio.sleep(3600)  # a client that stays connected
        try:
            part = await anext(stream)
        except StopAsyncIteration:
            ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        result.pulled += len(part)
        return {"type": "http.request", "body": part, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    return result


def endless(total: int, chunk: int = CHUNK) -> Iterable[bytes]:
    """`total` bytes of a JSON object that never ends well, in parts."""
    yield b'{"name": "'
    for _ in range(total // chunk):
        yield b"x" * chunk


def assert_problem(answer: Exchange, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body[:300]
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and body["status"] == status
    return body


async def test_a_declared_100_mb_body_is_refused_before_a_byte_of_it_is_read() -> None:
    answer = await exchange(shell_app(), "POST", "/v1/items", endless(100 * MB), {"content-length": str(100 * MB)})
    body = assert_problem(answer, 413, "body_too_large")
    assert body["max_bytes"] == LIMIT
    assert answer.pulled == 0
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("path", ["/v1/items", "/v1/raw"])
async def test_a_chunked_100_mb_body_is_refused_once_past_the_limit(path: str) -> None:
    """No Content-Length (chunked): counted as it streams, whatever the route reads it with."""
    answer = await exchange(shell_app(), "POST", path, endless(100 * MB))
    assert_problem(answer, 413, "body_too_large")
    assert answer.pulled <= LIMIT + CHUNK + 16, answer.pulled


async def test_a_route_declares_its_own_limit_and_an_upload_over_it_is_not_spooled() -> None:
    app = shell_app()
    boundary = "b0undary"

    def multipart(size: int) -> list[bytes]:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        data = b"x" * size
        return [head, *(data[i : i + CHUNK] for i in range(0, size, CHUNK)), f"\r\n--{boundary}--\r\n".encode()]

    content_type = {"content-type": f"multipart/form-data; boundary={boundary}"}
    fits = await exchange(app, "PUT", "/v1/uploads/photo", multipart(200 * 1024), content_type)
    assert fits.status == 200 and fits.json() == {"size": 200 * 1024}  # over the JSON default, within its own
    too_big = await exchange(app, "PUT", "/v1/uploads/photo", multipart(50 * MB), content_type)
    assert_problem(too_big, 413, "upload_too_large")  # the route's own refusal
    assert too_big.pulled <= UPLOAD_LIMIT + CHUNK + 200, too_big.pulled
    declared = await exchange(
        app, "PUT", "/v1/uploads/photo", [], {**content_type, "content-length": str(UPLOAD_LIMIT + 1)}
    )
    assert_problem(declared, 413, "upload_too_large")
    # The default still holds on other routes.
    raw = await exchange(app, "POST", "/v1/raw", [b"x" * CHUNK] * 5)
    assert_problem(raw, 413, "body_too_large")


def test_a_limit_is_declared_by_the_route_s_full_path_template() -> None:
    with pytest.raises(ValueError, match="full path template"):
        declare_body_limit(shell_app(), "uploads/{kind}", 1024)


async def test_a_half_sent_body_is_cut_after_the_timeout() -> None:
    async def half() -> AsyncIterator[bytes]:
        yield b'{"name": "ab'
        await asyncio.sleep(3600)
        yield b'"}'

    started = time.monotonic()
    answer = await exchange(shell_app(timeout=0.3), "POST", "/v1/items", half(), {"content-length": "14"})
    assert_problem(answer, 408, "request_timeout")
    assert time.monotonic() - started < 2
    assert answer.headers["connection"] == "close"


async def test_a_trickled_body_is_cut_at_its_deadline_though_each_part_comes_in_time() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        while True:
            await asyncio.sleep(0.05)
            yield b"x"

    started = time.monotonic()
    # 64 KiB at 64 KiB/s: one second for the whole body, 0.3 s between parts.
    answer = await exchange(shell_app(timeout=0.3, min_rate=64 * 1024), "POST", "/v1/items", trickle())
    assert_problem(answer, 408, "request_timeout")
    assert 0.9 < time.monotonic() - started < 3


async def test_a_body_sent_in_time_is_taken() -> None:
    async def slow() -> AsyncIterator[bytes]:
        for part in (b'{"name": ', b'"ab"}'):
            await asyncio.sleep(0.1)
            yield part

    answer = await exchange(shell_app(timeout=0.5), "POST", "/v1/items", slow(), {"content-type": "application/json"})
    assert answer.status == 200 and answer.json()["name"] == "ab"


async def test_200k_unknown_keys_get_a_small_answer() -> None:
    app = shell_app()
    huge = json.dumps({"name": "a", **{f"unknown{i}": 1 for i in range(200_000)}}).encode()
    assert len(huge) > 3 * MB
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        refused = await http.post("/v1/items", content=huge, headers={"content-type": "application/json"})
        assert refused.status_code == 413 and len(refused.content) < 1024
        # Within the limit, many unknown keys: the first MAX_FIELD_ERRORS, each bounded.
        many = {"name": "a", **{f"{'k' * 300}{i}": 1 for i in range(150)}}
        invalid = await http.post("/v1/items", json=many)
    assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = invalid.json()
    assert body["code"] == "invalid_request"
    assert len(body["errors"]) == MAX_FIELD_ERRORS and body["errors_omitted"] == 150 - MAX_FIELD_ERRORS
    assert all(len(e["field"]) <= 200 and len(e["message"]) <= 200 for e in body["errors"])
    assert len(invalid.content) < 8 * 1024


async def test_a_correlation_id_is_taken_only_when_it_is_a_uuid() -> None:
    app = shell_app()
    given = uuid4()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        kept = await http.post("/v1/items", json={"name": "a"}, headers={CORRELATION_HEADER: str(given).upper()})
        assert kept.headers[CORRELATION_HEADER] == str(given) == kept.json()["correlation_id"]
        for hostile in ("drop table", "<script>alert(1)</script>", "x" * 5000, f"{given}\r\nX-Evil: 1"):
            answer = await http.post("/v1/items", json={"name": "a"}, headers={CORRELATION_HEADER: hostile})
            made = answer.headers[CORRELATION_HEADER]
            assert made != hostile and UUID(made).version == 4 and answer.json()["correlation_id"] == made
        fresh = await http.post("/v1/items", json={"name": "a"})
        assert UUID(fresh.headers[CORRELATION_HEADER]).version == 4


EXPECTED_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


async def test_every_answer_carries_the_security_headers() -> None:
    app = shell_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answers = [
            await http.post("/v1/items", json={"name": "a"}),
            await http.post("/v1/items", json={}),
            await http.get("/nowhere"),
            await http.post("/v1/raw", content=b"x" * (LIMIT + 1)),
            await http.get("/v1/boom"),
        ]
    assert [a.status_code for a in answers] == [200, 422, 404, 413, 500]
    for answer in answers:
        for name, value in EXPECTED_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.url, name)
        assert UUID(answer.headers[CORRELATION_HEADER])
