"""payment's HTTP routes: a person's tiers and bills, the channels' notifications, and the
operators' refund and reconciliation lists."""

import asyncio
import time
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from contracts.events.payment import Channel
from kernel.auth import CurrentPrincipal, Principal
from kernel.clock import today_in_changzhou
from kernel.personal import IdentityUnavailable
from kernel.problems import Forbidden, NotFound, Problem, Refused
from kernel.web import PROBLEM_RESPONSES, StrictBody, problem_responses
from services.payment import domain
from services.payment.channels import ChannelVerifiers, acknowledgement
from services.payment.people import PeopleDirectory, resident_id_shape
from services.payment.service import PaymentService

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class TiersIn(StrictBody):
    """Guide PART-5: pension 一档…五档 or 无 (null); medical only 五档 or 无 (null)."""

    pension_tier: Annotated[int, Field(ge=1, le=5)] | None = Field(examples=[3])
    medical_tier: Literal[5] | None = Field(examples=[5])


class BillItemView(BaseModel):
    insurance: str
    tier: int
    amount_fen: int = Field(description="Integer fen.")


class BillView(BaseModel):
    bill_id: UUID
    period: str = Field(description="Contribution month, YYYY-MM.")
    items: list[BillItemView]
    amount_fen: int = Field(description="Total due, integer fen: the sum of the items.")
    due_on: date
    status: Literal["due", "paid", "overdue"] = Field(
        description="paid once settled; otherwise overdue from the day after due_on (Asia/Shanghai), else due."
    )
    issued_at: datetime
    paid_at: datetime | None = None


class AccountView(BaseModel):
    account_id: UUID
    insured_person_id: UUID
    application_id: UUID
    opened_at: datetime
    first_period: str = Field(description="The approval month: bills start there.")
    pension_tier: int | None = Field(description="Pension tier chosen last (1-5); null: 无.")
    medical_tier: int | None = Field(description="Medical tier chosen last (5); null: 无.")
    tiers_from: str = Field(description="The first month (YYYY-MM) the tiers chosen last apply to.")


class BillsView(BaseModel):
    today: date = Field(description="The day (Asia/Shanghai) against which `status` was judged.")
    account: AccountView
    bills: list[BillView]
    amount_due_fen: int = Field(description="Total of the bills not paid (due and overdue), integer fen.")


def service(request: Request) -> PaymentService:
    svc: PaymentService = request.app.state.payment
    return svc


Service = Annotated[PaymentService, Depends(service)]


def _check_self(principal: Principal, user_id: UUID) -> None:
    if principal.role != "applicant" or principal.user_id != user_id:
        raise Forbidden("not_your_account", "只能由参保人本人变更自己的缴费档次。")


def _check_reader(principal: Principal, user_id: UUID) -> None:
    if principal.role == "operator":
        return
    if principal.role != "applicant" or principal.user_id != user_id:
        raise Forbidden("not_your_bills", "只能查看本人的缴费账单。")


@router.put("/insured/{user_id}/tiers", summary="Change one's tiers (from the first month not yet billed)")
async def change_tiers(user_id: UUID, body: TiersIn, svc: Service, principal: CurrentPrincipal) -> AccountView:
    _check_self(principal, user_id)
    await svc.change_tiers(user_id, domain.Tiers(body.pension_tier, body.medical_tier))
    return _account(await svc.account_row(user_id))


@router.get("/insured/{user_id}/bills", summary="The insured person's bills (the person, or an operator)")
async def bills(user_id: UUID, svc: Service, principal: CurrentPrincipal) -> BillsView:
    _check_reader(principal, user_id)
    account, rows = await svc.bills_of(user_id)
    today = today_in_changzhou()
    views = [_bill(row, today) for row in rows]
    return BillsView(
        today=today,
        account=_account(account),
        bills=views,
        amount_due_fen=sum(v.amount_fen for v in views if v.status != "paid"),
    )


def _account(row: asyncpg.Record) -> AccountView:
    return AccountView(**{name: row[name] for name in AccountView.model_fields})


def _bill(row: asyncpg.Record, today: date) -> BillView:
    items: list[dict[str, Any]] = row["items"]
    return BillView(
        bill_id=row["bill_id"],
        period=row["period"],
        items=[BillItemView(**item) for item in items],
        amount_fen=row["amount_fen"],
        due_on=row["due_on"],
        status=domain.bill_status(row["due_on"], row["paid_at"] is not None, today),
        issued_at=row["issued_at"],
        paid_at=row["paid_at"],
    )


# --- channel notifications (services/payment/README.md, "Settlement") ---------------------------

# A channel's notification is a few kilobytes; anything larger is refused before it is read whole.
MAX_NOTIFICATION_BYTES = 64 * 1024


async def read_notification(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_NOTIFICATION_BYTES:
        raise notification_too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_NOTIFICATION_BYTES:
            raise notification_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def notification_too_large() -> Problem:
    return Problem("notification_too_large", f"支付通知超过 {MAX_NOTIFICATION_BYTES} 字节，不予受理。", 413)


NOTIFICATIONS_PATH = "/v1/channels/{channel}/notifications"


@router.post(
    NOTIFICATIONS_PATH.removeprefix("/v1"),
    summary="A payment channel's signed notification (services/payment/channels/README.md)",
    status_code=200,
    description="401 invalid_signature, stale_notification (nothing recorded); 413 notification_too_large; "
    "422 invalid_notification, unknown_bank (nothing recorded), amount_mismatch, unknown_bill (recorded as a "
    "reconciliation exception). Accepted: wechat 204; alipay 200 text `success`; our HMAC format 200 "
    '`{"status":"accepted"}`.',
    responses={204: {"description": "Accepted (wechat)."}, **problem_responses(413)},
    response_class=Response,
)
async def channel_notification(channel: Channel, request: Request, svc: Service) -> Response:
    body = await read_notification(request)
    verifiers: ChannelVerifiers = request.app.state.payment_channels
    # Verified before any database work: a refused notification changes nothing.
    verified = verifiers.verify(channel, request.headers, body, now=datetime.now(UTC))
    result, _ = await svc.receive_notification(verified)
    if (refusal := svc.refusal(result)) is not None:
        raise refusal
    ack = acknowledgement(channel)
    return Response(content=ack.body, status_code=ack.status_code, media_type=ack.media_type)


# --- operators' lists -----------------------------------------------------------------------------


class RefundView(BaseModel):
    payment_id: UUID
    bill_id: UUID
    insured_person_id: UUID
    payer_id: str | None = Field(description="The channel's identifier of the payer.")
    payer_name_masked: str | None
    channel: Channel
    channel_txn_id: str
    amount_fen: int = Field(description="Amount to give back, integer fen.")
    bank: str | None
    paid_at: datetime
    settling_payment_id: UUID | None = Field(description="The settlement that paid the bill first.")


class RefundsView(BaseModel):
    refunds: list[RefundView]
    amount_fen: int = Field(description="Total of the listed overpayments, integer fen.")


class ExceptionView(BaseModel):
    exception_id: UUID
    code: Literal["amount_mismatch", "unknown_bill"]
    channel: Channel
    channel_txn_id: str
    out_trade_no: str
    bill_id: UUID | None
    expected_fen: int | None = Field(description="The bill's amount due, integer fen (null: no such bill).")
    amount_fen: int = Field(description="The amount the channel reported, integer fen.")
    paid_at: datetime
    recorded_at: datetime


class ExceptionsView(BaseModel):
    exceptions: list[ExceptionView]


def _check_operator(principal: Principal) -> None:
    if principal.role != "operator":
        raise Forbidden("operators_only", "仅经办人员可查看退款和对账异常。")


Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/refunds", summary="Overpayments owed back (operators)")
async def refunds(svc: Service, principal: CurrentPrincipal, limit: Limit = 100, offset: Offset = 0) -> RefundsView:
    _check_operator(principal)
    rows = await svc.refunds(limit, offset)
    views = [RefundView(**{name: row[name] for name in RefundView.model_fields}) for row in rows]
    return RefundsView(refunds=views, amount_fen=sum(v.amount_fen for v in views))


@router.get("/reconciliation/exceptions", summary="Notifications that could not settle (operators)")
async def reconciliation_exceptions(
    svc: Service, principal: CurrentPrincipal, limit: Limit = 100, offset: Offset = 0
) -> ExceptionsView:
    _check_operator(principal)
    rows = await svc.reconciliation_exceptions(limit, offset)
    return ExceptionsView(exceptions=[ExceptionView(**{n: row[n] for n in ExceptionView.model_fields}) for row in rows])


# --- paying for another person (services/payment/README.md, "Paying for another person") ---------


class LookupIn(StrictBody):
    id_number: str = Field(min_length=1, max_length=32, examples=["320402199001010017"])
    name: str = Field(min_length=1, max_length=30, examples=["张三"])


class PayableBillView(BaseModel):
    """What paying needs and nothing more of the person: no name, phone or account details."""

    bill_id: UUID
    period: str = Field(description="Contribution month, YYYY-MM.")
    amount_fen: int = Field(description="Amount due, integer fen.")
    due_on: date
    status: Literal["due", "overdue"]


class PayableBillsView(BaseModel):
    bills: list[PayableBillView]
    amount_due_fen: int = Field(description="Total of the listed bills, integer fen.")


def _person_not_found() -> NotFound:
    return NotFound("person_not_found", "未找到与该身份证号码和姓名相符的参保人，请核对后重试。")


@router.post(
    "/bills/lookup",
    summary="Someone else's bills to pay, by ID number and name (代人缴费 / 为他人缴费)",
    description="200: the person's unpaid bills (an empty list when all are paid). 404 person_not_found "
    "alike for an unknown ID number, another name and a person without a contribution account; "
    "422 invalid_id_number; 503 identity_unavailable.",
    responses=problem_responses(404, 503),
)
async def lookup_bills(body: LookupIn, svc: Service, principal: CurrentPrincipal, request: Request) -> PayableBillsView:
    if principal.role not in ("applicant", "operator"):
        raise Forbidden("payers_only", "仅参保申请人或经办人员可查询代缴账单。")
    number = resident_id_shape(body.id_number)
    if number is None:
        raise Refused("invalid_id_number", "身份证号码格式不正确，请核对后重新输入。")
    people: PeopleDirectory = request.app.state.payment_people
    started = time.monotonic()
    try:
        user_id = await people.match(number, body.name)
        rows = await svc.payable_bills(user_id) if user_id is not None else None
    except IdentityUnavailable as exc:
        raise Problem("identity_unavailable", "暂时无法核对人员身份，请稍后再试。", 503) from exc
    finally:
        # One floor for every answer: a match reads more than a miss, and timing must not tell them apart.
        floor: float = request.app.state.lookup_min_seconds
        await asyncio.sleep(max(0.0, floor - (time.monotonic() - started)))
    if rows is None:
        raise _person_not_found()
    today = today_in_changzhou()
    views = [
        PayableBillView(
            bill_id=row["bill_id"],
            period=row["period"],
            amount_fen=row["amount_fen"],
            due_on=row["due_on"],
            status="overdue" if domain.bill_status(row["due_on"], False, today) == "overdue" else "due",
        )
        for row in rows
    ]
    return PayableBillsView(bills=views, amount_due_fen=sum(v.amount_fen for v in views))
