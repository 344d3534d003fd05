"""notify's HTTP routes: the SMS log for operators.

Operators only (401 without a token, 403 for applicants and reviewers): the log spans every
person's messages and phone numbers; reviewers see whether their applicant was notified in the
application's status (enrollment), which is built from SmsSent.
"""

from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from kernel.auth import Principal, require_role
from kernel.problems import NotFound
from kernel.web import PROBLEM_RESPONSES
from services.notify import projections
from services.notify.domain import State

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, tags=["sms"])

Operator = Annotated[Principal, require_role("operator")]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip.")]
# PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
OutId = Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$", description="The provider's out id.")]


class SmsView(BaseModel):
    sms_id: UUID
    recipient_id: UUID
    application_id: UUID | None
    case_id: UUID | None
    payment_id: UUID | None
    bill_id: UUID | None
    subject: str | None
    cause_event_id: UUID
    phone_masked: str | None
    template: str
    text: str
    state: State
    attempts: int
    provider: str | None
    provider_message_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    next_attempt_at: datetime | None


class SmsPage(BaseModel):
    items: list[SmsView]
    total: int
    limit: int
    offset: int


class SinkMessage(BaseModel):
    id: int
    out_id: str
    phone_masked: str
    template: str
    text: str
    received_at: datetime


class SinkPage(BaseModel):
    items: list[SinkMessage]
    total: int
    limit: int
    offset: int


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


@router.get("/sms", summary="The SMS log: every message with its state, newest first")
async def list_sms(
    request: Request,
    _: Operator,
    recipient_id: UUID | None = None,
    state: State | None = None,
    case_id: UUID | None = None,
    payment_id: UUID | None = None,
    bill_id: UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SmsPage:
    where = projections.SmsFilter(
        recipient_id=recipient_id, state=state, case_id=case_id, payment_id=payment_id, bill_id=bill_id
    )
    items, total = await projections.sms_page(_pool(request), where, limit, offset)
    return SmsPage(items=[SmsView(**i) for i in items], total=total, limit=limit, offset=offset)


@router.get("/sms/sink", summary="What the local sink gateway received (development; empty with Aliyun)")
async def list_sink(
    request: Request, _: Operator, out_id: OutId = None, limit: Limit = 50, offset: Offset = 0
) -> SinkPage:
    items, total = await projections.sink_page(_pool(request), out_id, limit, offset)
    return SinkPage(items=[SinkMessage(**i) for i in items], total=total, limit=limit, offset=offset)


@router.get("/sms/{sms_id}", summary="One message of the SMS log")
async def get_sms(sms_id: UUID, request: Request, _: Operator) -> SmsView:
    item = await projections.sms_one(_pool(request), sms_id)
    if item is None:
        raise NotFound("sms_not_found", "未找到该短信记录。")
    return SmsView(**item)
