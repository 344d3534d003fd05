"""Rendering: Jinja2 templates (autoescaped), the page security headers, and the error pages.

Pages carry a Content-Security-Policy of their own, stricter in what runs than the APIs need to
be lenient in: scripts and styles from this site only (no inline script, no CDN), images from this
site (and data:/blob: for the upload preview), frames from this site only (the PDF preview)."""

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from kernel.clock import SHANGHAI
from services.web.session import CSRF_FIELD, Visitor, finish

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


PAGE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-src 'self'; font-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CONTENT_SECURITY_POLICY, "X-Frame-Options": "SAMEORIGIN"}


def yuan(fen: int | None) -> str:
    """An amount in fen as people read it: 1234.50 元 (amounts are integers of fen everywhere)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d} 元"


def local_time(value: str | datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant from an API (ISO 8601, UTC) in Beijing time."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(SHANGHAI).strftime(fmt)


def local_date(value: str | date | None) -> str:
    if value is None or value == "":
        return "—"
    return (date.fromisoformat(value) if isinstance(value, str) else value).strftime("%Y-%m-%d")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,  # a misspelt variable fails the page's test, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(yuan=yuan, local_time=local_time, local_date=local_date)
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return env


ENVIRONMENT = _environment()


def render(request: Request, visitor: Visitor, template: str, status_code: int = 200, **context: Any) -> Response:
    html = ENVIRONMENT.get_template(template).render(request=request, visitor=visitor, **context)
    response = HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
    return finish(request, response, request.app.state.settings.secure_cookies)


def redirect(request: Request, to: str) -> Response:
    """After a form: 303 See Other, so that reloading the next page does not post again."""
    return finish(request, RedirectResponse(to, status_code=303), request.app.state.settings.secure_cookies)
