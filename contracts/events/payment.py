"""Events of the payment service (topic `payment.events`, key = the id of the aggregate that
decided the event, i.e. the envelope's stream_id): contributions of an approved applicant.
"""

from datetime import date
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from contracts.events.base import (
    Event,
    Fen,
    MedicalTier,
    NonEmptyStr,
    PensionTier,
    UtcDatetime,
)

Insurance = Literal["pension", "medical"]
Channel = Literal["wechat", "alipay", "unionpay_pos", "bank_counter", "bank_withholding"]
BANK_CHANNELS = frozenset({"bank_counter", "bank_withholding"})
Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2025-03"])]
MaskedName = Annotated[str, Field(min_length=2, pattern=r"\*", examples=["李*"])]

_EXAMPLE_ACCOUNT = "6fa459ea-ee8a-4ca4-894e-db77e160355e"
_EXAMPLE_PERSON = "0f8fad5b-d9cb-469f-a165-70867728950e"
_EXAMPLE_BILL = "16fd2706-8baf-433b-82eb-8c7fada847da"

_PENSION_DESCRIPTION = "Pension insurance tier 1-5; null = not enrolled in pension insurance."
_MEDICAL_DESCRIPTION = "Medical insurance tier (only 5); null = not enrolled in medical insurance."


class ContributionAccountOpened(Event):
    """An approved applicant became an insured person with a contribution account.

    Guide, Q6: "在参保登记申请审核通过后，可通过银行卡扣、微信、支付宝等方式缴费。" (payment is
    possible once the enrolment application is approved.)
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": _EXAMPLE_ACCOUNT,
                    "insured_person_id": _EXAMPLE_PERSON,
                    "application_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "pension_tier": 3,
                    "medical_tier": 5,
                    "opened_at": "2025-03-03T02:00:02Z",
                }
            ]
        }
    )

    account_id: UUID = Field(description="The contribution account; the stream key.")
    insured_person_id: UUID = Field(description="user_id of the insured person (参保人).")
    application_id: UUID = Field(description="The approved application the account comes from.")
    pension_tier: PensionTier | None = Field(description=_PENSION_DESCRIPTION)
    medical_tier: MedicalTier | None = Field(description=_MEDICAL_DESCRIPTION)
    opened_at: UtcDatetime = Field(description="When the account was opened (UTC).")


class BillItem(BaseModel):
    """The dues of one insurance in a bill."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    insurance: Insurance = Field(description="pension (养老保险) or medical (医疗保险).")
    tier: int = Field(ge=1, le=5, description="Tier the amount was computed for (medical: 5).")
    amount_fen: Fen = Field(description="Amount due for this insurance, integer fen.")

    @model_validator(mode="after")
    def _medical_tier(self) -> Self:
        if self.insurance == "medical" and self.tier != 5:
            raise ValueError("medical insurance has only tier 5")
        return self


class BillIssued(Event):
    """Dues for one period were computed from the yearly tariff and are payable.

    Guide, WeChat PART-5: "勾选缴费项目，点击“一键缴费”" (tick the items due and pay).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bill_id": _EXAMPLE_BILL,
                    "account_id": _EXAMPLE_ACCOUNT,
                    "insured_person_id": _EXAMPLE_PERSON,
                    "period": "2025-03",
                    "items": [
                        {"insurance": "pension", "tier": 3, "amount_fen": 120000},
                        {"insurance": "medical", "tier": 5, "amount_fen": 50000},
                    ],
                    "amount_fen": 170000,
                    "due_on": "2025-03-31",
                    "issued_at": "2025-03-03T02:00:03Z",
                }
            ]
        }
    )

    bill_id: UUID = Field(description="The bill; the stream key.")
    account_id: UUID = Field(description="The contribution account billed.")
    insured_person_id: UUID = Field(description="user_id of the insured person.")
    period: Period = Field(description="Contribution month, YYYY-MM.")
    items: list[BillItem] = Field(min_length=1, description="Dues per insurance; at most one item per insurance.")
    amount_fen: Fen = Field(description="Total due, integer fen: the sum of the items.")
    due_on: date = Field(description="Last day to pay.")
    issued_at: UtcDatetime = Field(description="When the bill was issued (UTC).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        insurances = [item.insurance for item in self.items]
        if len(set(insurances)) != len(insurances):
            raise ValueError("an insurance appears twice in the bill")
        if sum(item.amount_fen for item in self.items) != self.amount_fen:
            raise ValueError("amount_fen is not the sum of the items")
        return self


class PaymentSettled(Event):
    """A bill was paid through a channel; settled exactly once per channel transaction.

    Guide, 二、缴费方式: bank-card withholding (银行卡签约扣费), WeChat and Alipay
    "江苏税务社保缴纳", UnionPay POS, cash at bank counters. "如果您是为他人进行缴费……点击“代人缴费”":
    someone may pay for another person, so payer and insured person are recorded separately.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment_id": "886313e1-3b8a-4372-9b90-0c9aee199e5d",
                    "bill_id": _EXAMPLE_BILL,
                    "account_id": _EXAMPLE_ACCOUNT,
                    "insured_person_id": _EXAMPLE_PERSON,
                    "payer_id": "wx-oFz3a5b0Xq",
                    "payer_name_masked": "李*",
                    "channel": "wechat",
                    "channel_txn_id": "4200001234202503031234567890",
                    "amount_fen": 170000,
                    "bank": None,
                    "settled_at": "2025-03-03T03:10:00Z",
                }
            ]
        }
    )

    payment_id: UUID = Field(description="This settlement.")
    bill_id: UUID = Field(description="The bill paid.")
    account_id: UUID = Field(description="The contribution account credited.")
    insured_person_id: UUID = Field(description="user_id of the insured person (参保人).")
    payer_id: NonEmptyStr | None = Field(
        description="The channel's identifier of the payer when someone paid for the insured "
        "person (代人缴费); null when the insured person paid."
    )
    payer_name_masked: MaskedName | None = Field(
        description="Payer's name with characters hidden, e.g. 李*; null when the insured "
        "person paid. Set exactly when payer_id is set."
    )
    channel: Channel = Field(
        description="wechat / alipay (江苏税务社保缴纳), unionpay_pos (counter POS), bank_counter "
        "(cash at a bank), bank_withholding (signed bank-card withholding)."
    )
    channel_txn_id: NonEmptyStr = Field(
        description="The channel's transaction id; unique per channel, the idempotency key."
    )
    amount_fen: Annotated[StrictInt, Field(gt=0)] = Field(
        description="Amount paid, integer fen; equals the bill's amount."
    )
    bank: NonEmptyStr | None = Field(
        description="Bank name (e.g. 中国银行) for bank_counter and bank_withholding; null when "
        "the channel is not a bank."
    )
    settled_at: UtcDatetime = Field(description="When the channel confirmed the payment (UTC).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.payer_id is None) != (self.payer_name_masked is None):
            raise ValueError("payer_id and payer_name_masked are set together or not at all")
        if self.channel in BANK_CHANNELS and self.bank is None:
            raise ValueError(f"channel {self.channel} needs the bank")
        return self


WithholdingFailureReason = Literal[
    "insufficient_funds", "agreement_not_found", "card_not_activated", "account_abnormal", "refused", "other"
]


class BillOverdue(Event):
    """A bill was not paid by the end of its due day (due_on, Asia/Shanghai); recorded once per
    bill, the day after. Paying it later still settles it (PaymentSettled).

    Guide, 二、缴费方式: contributions are paid monthly; an unpaid month is reminded once.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bill_id": _EXAMPLE_BILL,
                    "account_id": _EXAMPLE_ACCOUNT,
                    "insured_person_id": _EXAMPLE_PERSON,
                    "period": "2025-03",
                    "amount_fen": 170000,
                    "due_on": "2025-04-15",
                    "overdue_at": "2025-04-16T01:00:00Z",
                }
            ]
        }
    )

    bill_id: UUID = Field(description="The bill; the stream key.")
    account_id: UUID = Field(description="The contribution account billed.")
    insured_person_id: UUID = Field(description="user_id of the insured person.")
    period: Period = Field(description="Contribution month, YYYY-MM.")
    amount_fen: Annotated[StrictInt, Field(gt=0)] = Field(description="Amount still due, integer fen.")
    due_on: date = Field(description="The last day to pay, which has passed.")
    overdue_at: UtcDatetime = Field(description="When payment recorded the bill overdue (UTC).")


class WithholdingCollectionFailed(Event):
    """A bank could not collect a bill under the person's withholding agreement (银行卡签约扣费,
    guide 二(一)); the bill stays unpaid and the next withholding run tries again. One event per
    failed collection request.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection_request_id": "9b2f3c1d-4e5a-4b6c-8d7e-0f1a2b3c4d5e",
                    "bill_id": _EXAMPLE_BILL,
                    "account_id": _EXAMPLE_ACCOUNT,
                    "insured_person_id": _EXAMPLE_PERSON,
                    "period": "2025-03",
                    "amount_fen": 170000,
                    "bank": "工商银行",
                    "reason": "insufficient_funds",
                    "failed_at": "2025-04-05T02:00:00Z",
                }
            ]
        }
    )

    collection_request_id: UUID = Field(description="Our collection request the bank answered; one failure each.")
    bill_id: UUID = Field(description="The bill; the stream key.")
    account_id: UUID = Field(description="The contribution account billed.")
    insured_person_id: UUID = Field(description="user_id of the insured person.")
    period: Period = Field(description="Contribution month, YYYY-MM.")
    amount_fen: Annotated[StrictInt, Field(gt=0)] = Field(description="Amount asked for, integer fen.")
    bank: NonEmptyStr = Field(description="The bank of the agreement, e.g. 工商银行.")
    reason: WithholdingFailureReason = Field(
        description="insufficient_funds (余额不足), agreement_not_found (协议不存在或已解除), card_not_activated "
        "(社保卡金融功能未激活), account_abnormal (账户状态异常), refused (the bank refused the request), other."
    )
    failed_at: UtcDatetime = Field(description="When the bank reported the failure (UTC).")


EVENTS: tuple[type[Event], ...] = (
    ContributionAccountOpened,
    BillIssued,
    PaymentSettled,
    BillOverdue,
    WithholdingCollectionFailed,
)
