"""The HTTP shell every service shares: problem details, correlation ids, security headers, bounded
request bodies (kernel.asgi), health. Prometheus metrics are served on their own port
(kernel.server), never on the API's."""

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal, cast
from uuid import uuid4

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import Scope

from kernel.asgi import CORRELATION_HEADER as CORRELATION_HEADER
from kernel.asgi import (
    BodyLimit,
    BodyLimitMiddleware,
    CorrelationMiddleware,
    SecurityHeadersMiddleware,
    add_security_headers,
)
from kernel.db import database_unavailable
from kernel.logging import get_logger
from kernel.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemDetails

log = get_logger(__name__)

# A validation error answers at most this many field errors, each cut to _ERROR_TEXT characters:
# the answer stays small whatever the body (issue 9: 200k unknown keys once gave 17.5 MB back).
MAX_FIELD_ERRORS = 20
_ERROR_TEXT = 200


class StrictBody(BaseModel):
    """Base of request bodies: an unknown field is a mistake worth telling the caller about.

    A NUL character is refused in every text field: PostgreSQL cannot store it (text nor jsonb)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


_HTTP_CODES = {
    400: ("bad_request", "请求格式不正确。"),
    401: ("authentication_required", "请先登录。"),
    403: ("forbidden", "您没有访问此资源的权限。"),
    404: ("not_found", "未找到您要访问的内容。"),
    405: ("method_not_allowed", "不支持此请求方法。"),
    413: ("too_large", "上传内容过大。"),
    415: ("unsupported_media_type", "不支持的内容类型。"),
}

# What each refusal means to a caller of any route. Only under problem+json, the media type the
# handlers below answer with: a `model` would also declare an application/json body that is never sent.
_PROBLEM_MEANINGS = {
    400: "The body could not be parsed (e.g. not valid JSON).",
    401: "Not logged in, or the token is invalid or expired.",
    403: "Logged in, but not allowed to do this.",
    404: "No such resource (or not one of yours).",
    409: "Conflicts with the resource's current state.",
    413: "The upload is larger than allowed.",
    415: "The upload's content is not of an accepted type.",
    422: "The request is well-formed but refused: invalid fields or a rule of the domain.",
}
_PROBLEM_SCHEMA = ProblemDetails.model_json_schema(mode="serialization")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring problem+json answers with these statuses."""
    return {
        status: {
            "description": _PROBLEM_MEANINGS.get(status, "Refused (problem details)."),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


# Declared on every service's router: what any of its routes may answer.
PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 409, 422)


class OrjsonResponse(JSONResponse):
    """A JSONResponse rendered by orjson: for the bodies built here (text keys, text, integers,
    lists) the same bytes as Starlette's compact `json.dumps`, in a tenth of the time.

    Not every service's default response class: a route that declares what it returns is
    already serialised by Pydantic's own encoder (FastAPI's fast path), which a custom default
    class would turn off."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    """The problem as problem+json; a `retry_after` extension (seconds) is also the Retry-After header."""
    answer = OrjsonResponse(
        problem.body(instance=request.url.path), status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE
    )
    retry_after = problem.extensions.get("retry_after")
    if isinstance(retry_after, int) and retry_after > 0:
        answer.headers["Retry-After"] = str(retry_after)
    return answer


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body")[:_ERROR_TEXT],
            "message": str(e.get("msg", ""))[:_ERROR_TEXT],
            "type": str(e.get("type"))[:_ERROR_TEXT],
        }
        for e in errors[:MAX_FIELD_ERRORS]
    ]


RETRY_AFTER_SECONDS = 5


class _Quiet:
    """True at most once per `seconds`: one warning for an outage, not one per request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = -seconds

    def first_in_a_while(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


_OUTAGE = _Quiet(60.0)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        omitted = {"errors_omitted": len(errors) - MAX_FIELD_ERRORS} if len(errors) > MAX_FIELD_ERRORS else {}
        problem = Problem(
            "invalid_request",
            "提交的信息不完整或格式不正确，请检查后重试。",
            422,
            errors=_field_errors(errors),
            **omitted,
        )
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, detail = _HTTP_CODES.get(exc.status_code, ("http_error", "请求无法处理。"))
        return problem_response(Problem(code, detail, exc.status_code), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            # Not a bug: PostgreSQL is away. One warning per outage, not a traceback per request.
            if _OUTAGE.first_in_a_while():
                log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
            problem = Problem("service_unavailable", "系统暂时无法处理您的请求，请稍后再试。", 503)
        else:
            log.exception("unhandled_error", path=request.url.path)
            problem = Problem("internal_error", "系统繁忙，请稍后再试。", 500)
        # Answered outside the middlewares (Starlette's ServerErrorMiddleware): the same headers here.
        answer = problem_response(problem, request)
        if problem.status == 503:
            answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        add_security_headers(MutableHeaders(raw=answer.raw_headers))
        answer.headers[CORRELATION_HEADER] = correlation_id(request)
        return answer


def install_http_shell(app: FastAPI, *, body_max_bytes: int, body_timeout_seconds: float, body_min_rate: int) -> None:
    """The middlewares of every service (kernel.asgi), outermost first: correlation id, security
    headers, bounded request bodies.

    Bodies: `body_max_bytes` (64 KiB of JSON by default, settings `http_body_max_bytes`) for every
    route, except a route that declares its own limit with `declare_body_limit` (an upload);
    `body_timeout_seconds` at most between two parts of a body, and the whole body within
    max(`body_timeout_seconds`, limit / `body_min_rate`) seconds."""
    app.state.body_limits = []
    app.state.body_max_bytes = body_max_bytes

    def limit_of(scope: Scope) -> BodyLimit:
        path = scope.get("path", "")
        for pattern, limit in app.state.body_limits:
            if pattern.fullmatch(path):
                return cast(BodyLimit, limit)
        return BodyLimit(int(app.state.body_max_bytes))

    # add_middleware: the last one added is the outermost.
    app.add_middleware(BodyLimitMiddleware, limit_of=limit_of, idle=body_timeout_seconds, min_rate=body_min_rate)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CorrelationMiddleware)


def declare_body_limit(app: FastAPI, path: str, max_bytes: int, refusal: Problem | None = None) -> None:
    """How a route takes a body larger (or smaller) than the default: by its full path template,
    as the router has it (prefix included), e.g. in `app.py`:

        declare_body_limit(app, DOCUMENT_PATH, max_bytes + slack, refusal=too_large(max_bytes))

    Every method of that path gets the limit. A body over it is refused as soon as it is known
    (its Content-Length, else the part that passes the limit), before the route runs or while it
    reads, with `refusal` (a 413 problem of the route's own, e.g. `document_too_large`) or else
    413 `body_too_large`."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r}: the full path template of a route, e.g. /v1/things/{{thing_id}}")
    pattern, _, _ = compile_path(path)
    app.state.body_limits.append((pattern, BodyLimit(max_bytes, refusal)))


def correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", None) or uuid4())


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool]


def install_operational_routes(app: FastAPI, ready: Callable[[], Awaitable[dict[str, bool]]]) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database and broker reachable",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is unreachable."}},
    )
    async def readyz() -> JSONResponse:
        checks = await ready()
        ok = all(checks.values())
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        return OrjsonResponse(body, status_code=200 if ok else 503)


class DayWindowView(BaseModel):
    """The calendar days a dashboard's figures cover (kernel.clock.CalendarWindow): the head of
    enrollment's and review's statistics answers."""

    time_zone: str = Field(default="Asia/Shanghai", description="The calendar the days are counted in.")
    first_day: date = Field(description="The first day of the window.")
    last_day: date = Field(description="The last day of the window: today in Asia/Shanghai.")


# `?days=N` of a statistics route: how many calendar days, today included.
DaysQuery = Annotated[int, Query(ge=1, le=366, description="How many days, today (Asia/Shanghai) included.")]
