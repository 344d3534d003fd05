"""Pure ASGI middlewares of the HTTP shell (kernel.web installs them on every service's app):
correlation ids, security headers, and request bodies bounded in size and in time.

Pure ASGI (not `BaseHTTPMiddleware`) so that a body is counted as it arrives, message by message:
a body that is too large is refused once the limit is passed, never read whole, whatever the
route does with it (FastAPI's JSON parsing, `request.form()`, `request.stream()`).
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.problems import PROBLEM_MEDIA_TYPE, Problem

CORRELATION_HEADER = "X-Correlation-ID"

# Every answer of the APIs: personal data, never cached, never framed, never sniffed
# (issue 9, "Headers and text"). A route that sets one of these itself keeps its own value
# (a document served with `Content-Security-Policy: sandbox`), except Cache-Control, which is
# always `no-store` unless the route's own value already says so.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", API_CONTENT_SECURITY_POLICY),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def accepted_correlation_id(given: str | None) -> str:
    """The caller's correlation id when it is a UUID (in its canonical form, never verbatim),
    else a new one: whatever a caller sends is neither echoed nor stored as it was sent."""
    if given and len(given) <= 64:
        try:
            return str(UUID(given))
        except ValueError:
            pass
    return str(uuid4())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class CorrelationMiddleware:
    """Gives every request a correlation id (`request.state.correlation_id`, the log context,
    the answer's X-Correlation-ID)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = accepted_correlation_id(_header(scope, b"x-correlation-id"))
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


def add_security_headers(headers: MutableHeaders) -> None:
    """The headers every answer carries (SECURITY_HEADERS, Cache-Control: no-store)."""
    if "no-store" not in headers.get("cache-control", ""):
        headers["Cache-Control"] = "no-store"
    for name, value in SECURITY_HEADERS:
        if name not in headers:
            headers[name] = value


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyRefused(Exception):
    """Raised into the app from `receive` once the body is refused; the middleware answers."""


def body_too_large(max_bytes: int) -> Problem:
    return Problem("body_too_large", f"请求内容过大（不能超过 {max_bytes} 字节）。", 413, max_bytes=max_bytes)


def request_timeout() -> Problem:
    return Problem("request_timeout", "请求内容发送超时，请重试。", 408)


@dataclass(frozen=True)
class BodyLimit:
    """A route's bound on its request body, and its refusal (default: 413 `body_too_large`)."""

    max_bytes: int
    refusal: Problem | None = None

    def problem(self) -> Problem:
        return self.refusal or body_too_large(self.max_bytes)


class _Body:
    """`receive` of one request, counting the body's bytes against `limit` and its time against
    a deadline; past either it records the refusal and raises into the app."""

    def __init__(self, receive: Receive, limit: BodyLimit, idle: float, deadline: float) -> None:
        self._receive = receive
        self.limit = limit
        self.idle = idle
        self.deadline = deadline
        self.received = 0
        self.done = False
        self.refusal: Problem | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise _BodyRefused
        if self.done:  # after the body: the app waits for a disconnect, as long as it likes
            return await self._receive()
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(0.0, min(self.idle, remaining))):
                message = await self._receive()
        except TimeoutError:
            self.refusal = request_timeout()
            raise _BodyRefused from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit.max_bytes:
                self.refusal = self.limit.problem()
                raise _BodyRefused
            if not message.get("more_body", False):
                self.done = True
        else:
            self.done = True  # http.disconnect: nothing more will come
        return message


class BodyLimitMiddleware:
    """Bounds every request body: its size (`limit_of(scope)`, the route's limit), checked on the
    declared Content-Length before anything is read and counted while it streams (chunked
    included); and its time: `idle` seconds at most between two parts, and the whole body within
    max(`idle`, limit / `min_rate`) seconds. Answers 413 (the route's refusal, else
    `body_too_large`) or 408 `request_timeout` (problem+json, `Connection: close`: the rest of the
    body is never read)."""

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[Scope], BodyLimit], idle: float, min_rate: int) -> None:
        self.app = app
        self.limit_of = limit_of
        self.idle = idle
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit.max_bytes:
            await _answer(limit.problem(), scope, send)
            return
        allowed = max(self.idle, limit.max_bytes / self.min_rate)
        body = _Body(receive, limit, self.idle, asyncio.get_running_loop().time() + allowed)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.refusal is not None and not started:
                return  # whatever the app makes of the refusal, the answer is the middleware's
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except Exception:
            if body.refusal is None or started:
                raise
        if body.refusal is not None and not started:
            await _answer(body.refusal, scope, send)


async def _answer(problem: Problem, scope: Scope, send: Send) -> None:
    content = json.dumps(problem.body(instance=scope.get("path")), ensure_ascii=False).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": problem.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": content})
