"""The HTTP shell every service shares: problem details, correlation ids, health and metrics."""

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import uuid4

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.logging import get_logger
from kernel.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemDetails

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"


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


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(instance=request.url.path), status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = Problem(
            "invalid_request", "提交的信息不完整或格式不正确，请检查后重试。", 422, errors=_field_errors(exc)
        )
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, detail = _HTTP_CODES.get(exc.status_code, ("http_error", "请求无法处理。"))
        return problem_response(Problem(code, detail, exc.status_code), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(Problem("internal_error", "系统繁忙，请稍后再试。", 500), request)


def install_correlation(app: FastAPI) -> None:
    @app.middleware("http")
    async def _correlate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid4())
        request.state.correlation_id = correlation_id[:100]
        with structlog.contextvars.bound_contextvars(correlation_id=request.state.correlation_id):
            response = await call_next(request)
        response.headers[CORRELATION_HEADER] = request.state.correlation_id
        return response


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
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
