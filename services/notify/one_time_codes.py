"""One-time codes texted for identity (issue 9, "SMS one-time codes"): an authenticated internal
call, never a topic (topics are kept forever, a code must not be).

`POST /v1/internal/one-time-codes` (bearer: a token of NOTIFY_CODE_SENDERS, identity's
IDENTITY_NOTIFY_TOKEN, compared in constant time) texts template `one_time_code` (or, for a
phone that already has an account, `phone_registered`) straight through the SMS gateway, once:
no `sms_messages` row, no event, no retry (the person asks for a new code). notify logs the send
with the phone masked and never the code; only the local sink gateway, the development stand-in
for the phone, keeps the text it "delivered".
"""

from typing import Annotated, Literal
from uuid import uuid4

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, model_validator

from contracts.events.base import mask_phone
from kernel.auth import service_caller
from kernel.logging import get_logger
from kernel.problems import Problem
from kernel.web import PROBLEM_RESPONSES, StrictBody
from services.notify.gateway import SmsGateway, load_gateway
from services.notify.settings import NotifySettings
from services.notify.templates import ONE_TIME_CODE_TEMPLATE, Templates

log = get_logger(__name__)
router = APIRouter(prefix="/v1/internal", responses=PROBLEM_RESPONSES, tags=["internal"])
_bearer = HTTPBearer(auto_error=False)
PURPOSES = {"register": "注册账户", "change_phone": "更换手机号码"}


class CodeMessage(StrictBody):
    phone: str = Field(pattern=r"^\+861[3-9][0-9]{9}$", description="E.164 mainland mobile.")
    template: Literal["one_time_code", "phone_registered"]
    purpose: Literal["register", "change_phone"]
    code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    minutes: int = Field(default=5, ge=1, le=60)

    @model_validator(mode="after")
    def _code_with_its_template(self) -> "CodeMessage":
        if (self.template == ONE_TIME_CODE_TEMPLATE) != (self.code is not None):
            raise ValueError("a code goes with template one_time_code, and only with it")
        return self


class CodeMessageSent(BaseModel):
    out_id: str


def code_sender(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Which service asks: its token must be one of NOTIFY_CODE_SENDERS (constant-time compare)."""
    return service_caller(credentials, request.app.state.code_senders, "发送验证码短信")


def _gateway(request: Request) -> SmsGateway:
    gateway: SmsGateway | None = getattr(request.app.state, "code_gateway", None)
    if gateway is None:
        settings: NotifySettings = request.app.state.settings
        templates: Templates = request.app.state.templates
        pool: asyncpg.Pool = request.app.state.runtime.pool
        gateway = load_gateway(settings, templates, pool)
        request.app.state.code_gateway = gateway
    return gateway


@router.post(
    "/one-time-codes",
    status_code=202,
    summary="Text a one-time code (identity only; the code is never stored nor published)",
    response_model=CodeMessageSent,
)
async def send_code(
    body: CodeMessage, request: Request, sender: Annotated[str, Depends(code_sender)]
) -> CodeMessageSent:
    params = (
        {"code": body.code or "", "minutes": str(body.minutes), "purpose": PURPOSES[body.purpose]}
        if body.template == ONE_TIME_CODE_TEMPLATE
        else {}
    )
    out_id = f"otc-{uuid4().hex}"
    gateway = _gateway(request)
    try:
        result = await gateway.send(body.phone, body.template, params, out_id)
    except Exception as exc:  # the provider's answer is unknown: identity answers 503, the person asks again
        log.warning("one_time_code_failed", sender=sender, phone=mask_phone(body.phone), error=type(exc).__name__)
        raise Problem("sms_unavailable", "短信发送暂时不可用，请稍后再试。", 503) from exc
    facts = {"sender": sender, "phone": mask_phone(body.phone), "template": body.template, "out_id": out_id}
    if result.status != "accepted":
        log.warning("one_time_code_refused", **facts, provider=gateway.name, error_code=result.error_code)
        raise Problem("sms_unavailable", "短信发送暂时不可用，请稍后再试。", 503)
    log.info("one_time_code_sent", **facts, purpose=body.purpose, provider=gateway.name)
    return CodeMessageSent(out_id=out_id)
