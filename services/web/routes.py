"""The pages every visitor shares: the front page, log-in and log-out, the help lines.

The other rooms add their own routers (services/web/README.md, "Pages"): applicant_routes.py (the
phone pages under /me), console_routes.py (reviewers, /console), operator_routes.py (/ops) and
dashboard_routes.py (/dashboard)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from kernel.web import correlation_id
from services.web.apis import ApiRefused, Apis
from services.web.pages import redirect, render
from services.web.session import CsrfChecked, CurrentVisitor, close_session, open_session, safe_next

router = APIRouter()

HOME_OF_ROLE = {"applicant": "/me", "reviewer": "/console", "operator": "/dashboard"}


def apis_of(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis


@router.get("/", include_in_schema=False)
async def front(request: Request, visitor: CurrentVisitor) -> Response:
    if visitor.role:
        return redirect(request, HOME_OF_ROLE[visitor.role])
    return render(request, visitor, "front.html")


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, visitor: CurrentVisitor, next: str | None = None) -> Response:
    return render(request, visitor, "login.html", next=safe_next(next, ""), error=None, phone="")


@router.post("/login", include_in_schema=False, dependencies=[CsrfChecked])
async def login(
    request: Request,
    visitor: CurrentVisitor,
    phone: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    try:
        session = await apis_of(request).json(
            "identity",
            "POST",
            "/v1/sessions",
            json={"phone": phone, "password": password},
            correlation_id=correlation_id(request),
        )
    except ApiRefused as exc:  # wrong password, locked out: the same form with identity's words
        status = 429 if exc.status == 429 else 401 if exc.status == 401 else 422
        return render(request, visitor, "login.html", status_code=status, next=next, error=exc.detail, phone=phone)
    answer = redirect(request, safe_next(next, HOME_OF_ROLE[session["role"]]))
    open_session(answer, session["access_token"], int(session["expires_in"]), request.app.state.settings.secure_cookies)
    return answer


@router.post("/logout", include_in_schema=False, dependencies=[CsrfChecked])
async def logout(request: Request) -> Response:
    answer = redirect(request, "/")
    close_session(answer, request.app.state.settings.secure_cookies)
    return answer


@router.get("/help", include_in_schema=False)
async def help_page(request: Request, visitor: CurrentVisitor) -> Response:
    return render(request, visitor, "help.html")
