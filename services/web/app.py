"""web's composition root: the API clients, the token check, the pages and their error pages."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.logging import get_logger
from kernel.revocation import RevocationList, http_fetcher, refresh_revocations
from kernel.runtime import cancel_and_wait
from kernel.web import declare_body_limit, install_http_shell, install_operational_routes
from services.web.apis import SERVICES, ApiRefused, Apis, ApiUnavailable
from services.web.applicant_routes import UPLOAD_PATH
from services.web.applicant_routes import router as applicant_router
from services.web.console_routes import router as console_router
from services.web.dashboard_routes import router as dashboard_router
from services.web.operator_routes import router as operator_router
from services.web.pages import STATIC, redirect, render
from services.web.routes import router
from services.web.session import (
    CsrfRefused,
    LoginRequired,
    WrongRole,
    current_visitor,
    login_redirect_target,
)
from services.web.settings import WebSettings

log = get_logger(__name__)


def _urls(settings: WebSettings) -> dict[str, str]:
    return {
        "identity": settings.identity_url,
        "enrollment": settings.web_enrollment_url,
        "review": settings.web_review_url,
        "payment": settings.web_payment_url,
        "notify": settings.web_notify_url,
    }


def build(settings: WebSettings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """`transport`: tests reach the services in-process instead of over the network."""
    settings = settings or WebSettings()
    apis = Apis(_urls(settings), settings.web_api_timeout_seconds, transport)
    revocations = RevocationList()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        refresher = asyncio.create_task(
            refresh_revocations(
                revocations,
                http_fetcher(settings.identity_url, transport),
                settings.token_revocations_refresh_seconds,
            ),
            name="web-revocations",
        )
        try:
            yield
        finally:
            await cancel_and_wait(refresher)
            await apis.aclose()

    app = FastAPI(
        title="flexenroll web",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.environment == "development" else None,
    )
    app.state.settings, app.state.apis = settings, apis
    app.state.token_keys, app.state.token_guard = settings.public_keys(), revocations
    app.state.csrf_secret = settings.web_csrf_secret.get_secret_value().encode()
    install_http_shell(
        app,
        body_max_bytes=settings.http_body_max_bytes,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        body_min_rate=settings.http_body_min_rate,
    )
    # A document passes through the pages on its way to enrollment (applicant_routes.py).
    declare_body_limit(app, UPLOAD_PATH, settings.web_upload_max_bytes)
    _install_error_pages(app)

    async def answers(service: str) -> bool:
        try:
            await apis.call(service, "GET", "/healthz")
        except (ApiRefused, ApiUnavailable):
            return False
        return True

    async def ready() -> dict[str, bool]:
        # Asked together: a probe waits for the slowest service, not for the sum of them.
        return dict(zip(SERVICES, await asyncio.gather(*map(answers, SERVICES)), strict=True))

    install_operational_routes(app, ready)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for pages in (router, applicant_router, console_router, operator_router, dashboard_router):
        app.include_router(pages)
    return app


def _install_error_pages(app: FastAPI) -> None:
    async def page(request: Request, status: int, title: str, detail: str) -> Response:
        visitor = await current_visitor(request)
        return render(request, visitor, "error.html", status_code=status, title=title, detail=detail)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return redirect(request, login_redirect_target(exc.next_path))

    @app.exception_handler(WrongRole)
    async def _role(request: Request, exc: WrongRole) -> Response:
        return await page(request, 403, "无权访问", "您的账号没有访问此页面的权限。")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return await page(request, 403, "页面已过期", "页面已过期或来源不明，请返回上一页刷新后重新提交。")

    @app.exception_handler(ApiRefused)
    async def _refused(request: Request, exc: ApiRefused) -> Response:
        if exc.status == 401:  # the token expired or was revoked meanwhile: log in again
            return redirect(request, login_redirect_target(request.url.path))
        return await page(request, exc.status, "无法办理", exc.detail)

    @app.exception_handler(ApiUnavailable)
    async def _unavailable(request: Request, exc: ApiUnavailable) -> Response:
        log.warning("api_unavailable", path=request.url.path, error=str(exc))
        answer = await page(request, 503, "系统繁忙", "系统暂时无法处理您的请求，请稍后再试。")
        answer.headers["Retry-After"] = "5"
        return answer

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return await page(request, 422, "填写有误", "提交的信息不完整或格式不正确，请返回检查后重试。")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: ("页面不存在", "未找到您要访问的页面。"), 405: ("无法办理", "不支持此请求方法。")}
        title, detail = titles.get(exc.status_code, ("无法办理", "请求无法处理。"))
        return await page(request, exc.status_code, title, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path)
        return await page(request, 500, "系统繁忙", "系统繁忙，请稍后再试。")
