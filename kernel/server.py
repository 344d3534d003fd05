"""How a service process listens: uvicorn on uvloop with httptools' parser, bounded waits for slow
clients, and Prometheus' /metrics on a port of its own.

uvloop and httptools (instead of asyncio's loop and h11) because they cost less CPU per request
and per database and broker round trip (issue 10, item 5; measured in the issue's report). asyncpg
and aiokafka run on uvloop as on asyncio's loop.

Slow clients (issue 9, "Bounded requests"): a request's head must arrive within
`http_head_timeout_seconds` of the connection (or of the previous answer on a kept-alive one),
else the connection is closed; an idle kept-alive connection is closed after
`http_keep_alive_seconds`; a head (request line and headers) larger than 16 KiB is answered 400
and the connection closed; a body is bounded in size and time by kernel.asgi.BodyLimitMiddleware.

Metrics: served by prometheus_client on `metrics_host:metrics_http_port()` (identity 9001 …
notify 9005 locally), apart from the API: Prometheus scrapes it with no token, and no client of
the API can read it. The in-process equivalent for tests is `exposition()`.
"""

import asyncio
from collections.abc import Callable
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from prometheus_client import generate_latest, start_http_server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kernel.settings import ServiceSettings

# The bound on a request head (request line and headers).
MAX_HEAD_BYTES = 16 * 1024


class HeadTooLarge(Exception):
    """Raised from the parser's callbacks: httptools turns it into a parser error, which uvicorn
    answers 400 and closes the connection."""


# A connection closed while the client still sends (a refused body) lingers: our side is shut for
# writing at once, what still comes is read and dropped for this long at most, then it is
# closed. Without it the client's TCP stack answers the late data with a reset and may throw
# away the refusal (413/408) before the client reads it.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 4 * 1024 * 1024


class _LingeringTransport:
    """The connection's transport, whose `close()` lingers (LINGER_SECONDS)."""

    def __init__(self, transport: asyncio.Transport, protocol: "HeadTimeoutProtocol") -> None:
        self._transport = transport
        self._protocol = protocol
        self._closing = False
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._transport.is_closing() or not self._transport.can_write_eof():
            self._transport.close()
            return
        self._protocol.lingering = True
        try:
            self._transport.write_eof()  # after what is buffered: the answer is sent whole
            self._transport.resume_reading()
        except (OSError, RuntimeError):
            self._transport.close()
            return
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self._transport.close)

    def drop(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > LINGER_MAX_BYTES:
            self._transport.close()


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection on which no request head has arrived
    `head_timeout` seconds after it was opened or after its last answer (uvicorn's own
    keep-alive timer stops at the first byte, so a client trickling a head, or the rest of a body
    already answered, would hold the connection for ever); refusing a head over MAX_HEAD_BYTES
    (httptools itself has no bound); and closing with a linger (_LingeringTransport)."""

    head_timeout: float = 10.0
    lingering = False
    _head_bytes = 0
    _head_deadline: asyncio.TimerHandle | None = None
    _lingering_transport: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering_transport = _LingeringTransport(transport, self)
        super().connection_made(cast(asyncio.Transport, self._lingering_transport))
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            assert self._lingering_transport is not None
            self._lingering_transport.drop(data)
            return
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a request is being served: the body's bounds are the middleware's

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = asyncio.get_running_loop().call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout": seconds})


def server_config(app: FastAPI, settings: ServiceSettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of every service (tests override host/port)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.http_port(),
        "log_config": None,
        "access_log": False,
        "http": head_timeout_protocol(settings.http_head_timeout_seconds),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "loop": "uvloop",
        "timeout_graceful_shutdown": 10,
        "server_header": False,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def start_metrics_server(settings: ServiceSettings) -> Callable[[], None]:
    """Prometheus' /metrics on its own port (a daemon thread of prometheus_client); returns how
    to stop it."""
    server, thread = start_http_server(settings.metrics_http_port(), addr=settings.metrics_host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


def exposition() -> str:
    """What the metrics port answers, read in-process (tests)."""
    return generate_latest().decode()


def run(app: FastAPI, settings: ServiceSettings) -> None:
    start_metrics_server(settings)
    uvicorn.Server(server_config(app, settings)).run()
