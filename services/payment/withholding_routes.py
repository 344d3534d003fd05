"""payment's HTTP routes of bank withholding: the banks' signed agreement notices, and a person's
agreements (services/payment/README.md, "Bank withholding")."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from kernel.auth import CurrentPrincipal
from kernel.personal import IdentityUnavailable
from kernel.problems import Forbidden, Problem, Refused
from kernel.web import PROBLEM_RESPONSES, problem_responses
from services.payment import withholding, withholding_views
from services.payment.channels import ChannelVerifiers
from services.payment.channels.hmac_json import verify_agreement
from services.payment.people import PeopleDirectory, resident_id_shape
from services.payment.routes import Service, read_notification

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class AgreementAnswer(BaseModel):
    status: Literal["accepted"] = "accepted"
    outcome: withholding.AgreementOutcome = Field(
        description="signed (recorded now), reused (an active agreement for this person and card is on file: "
        "原已签订协议的不用重复签订), terminated, not_active (nothing to end)."
    )
    agreement_id: UUID


AGREEMENTS_PATH = "/v1/channels/bank_withholding/agreements"


@router.post(
    AGREEMENTS_PATH.removeprefix("/v1"),
    summary="A bank's signed notice of a withholding agreement (services/payment/channels/README.md)",
    description="401 invalid_signature, stale_notification; 413 notification_too_large; 422 invalid_notification, "
    "unknown_bank, invalid_id_number, person_not_found; 503 identity_unavailable. Nothing is recorded on a refusal.",
    responses=problem_responses(413, 503),
)
async def agreement_notice(request: Request, svc: Service) -> AgreementAnswer:
    body = await read_notification(request)
    verifiers: ChannelVerifiers = request.app.state.payment_channels
    notice = verify_agreement(verifiers.hmac["bank_withholding"], request.headers, body, now=datetime.now(UTC))
    number = resident_id_shape(notice.id_number)
    if number is None:
        raise Refused("invalid_id_number", "协议通知中的身份证号码格式不正确。")
    people: PeopleDirectory = request.app.state.payment_people
    try:
        person = await people.match(number, notice.name)
    except IdentityUnavailable as exc:
        raise Problem("identity_unavailable", "暂时无法核对人员身份，请稍后再试。", 503) from exc
    if person is None:
        raise Refused("person_not_found", "未找到与该身份证号码和姓名相符的实名认证人员，协议未登记。")
    confirmation = withholding.AgreementConfirmation(
        status=notice.status,
        agreement_no=notice.agreement_no,
        bank_code=notice.bank.code,
        bank=notice.bank.name,
        card_ref=notice.card_ref,
        card_last4=notice.card_last4,
        at=notice.at,
    )
    result, _ = await svc.confirm_agreement(person, confirmation)
    return AgreementAnswer(outcome=result["outcome"], agreement_id=UUID(result["agreement_id"]))


class AgreementView(BaseModel):
    agreement_id: UUID
    bank: str = Field(description="The bank, e.g. 工商银行.")
    card_last4: str | None = Field(description="The card's last four digits, to recognise it.")
    signed_at: datetime
    active: bool = Field(description="false once the bank said the agreement ended.")


class AgreementsView(BaseModel):
    agreements: list[AgreementView]


@router.get(
    "/insured/{user_id}/withholding-agreements",
    summary="The person's bank withholding agreements (the person, or an operator)",
)
async def agreements(user_id: UUID, svc: Service, principal: CurrentPrincipal) -> AgreementsView:
    if principal.role != "operator" and (principal.role != "applicant" or principal.user_id != user_id):
        raise Forbidden("not_your_agreements", "只能查看本人的扣缴协议。")
    rows = await svc.agreements_of(user_id)
    return AgreementsView(
        agreements=[
            AgreementView(
                agreement_id=row["agreement_id"],
                bank=row["bank"],
                card_last4=row["card_last4"],
                signed_at=row["signed_at"],
                active=row["terminated_at"] is None,
            )
            for row in rows
        ]
    )


class CollectionView(BaseModel):
    collection_request_id: UUID
    bill_id: UUID
    insured_person_id: UUID
    period: str
    attempt: int = Field(description="1 for the bill's first request; one more after each failed collection.")
    bank_code: str
    amount_fen: int = Field(description="Amount asked for, integer fen.")
    requested_at: datetime
    state: Literal["pending", "sending", "sent", "failed"] = Field(
        description="Sending to the bank (kernel.effects): sent = the bank took the request; failed = it refused it."
    )
    provider_ref: str | None = Field(description="The bank's reference of the request.")
    result: Literal["collected", "failed"] | None = Field(description="The bank's answer; null while awaited.")
    result_reason: str | None


class CollectionsView(BaseModel):
    collections: list[CollectionView]


@router.get("/withholding/collections", summary="Withholding collection requests and their outcome (operators)")
async def collections(
    svc: Service,
    principal: CurrentPrincipal,
    insured_person_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CollectionsView:
    if principal.role != "operator":
        raise Forbidden("operators_only", "仅经办人员可查看代扣请求。")
    rows = await withholding_views.collections(svc.pool, insured_person_id, limit, offset)
    views = [CollectionView(**{name: row[name] for name in CollectionView.model_fields}) for row in rows]
    return CollectionsView(collections=views)
