"""Bank withholding (银行卡签约缴费, guide 二(一), "the main way"), pure: agreements and collections.

The guide: the person signs a withholding agreement (扣缴协议) at a bank branch with the Jiangsu
social security card; "原已签订协议的不用重复签订" (an agreement already signed is not signed again).
So payment hears of agreements from the bank, and an agreement for the same person and card is
the same agreement: its id is derived from (person, bank, card), and a second signature of it is
answered "reused", never recorded twice.

Streams, in payment's own store:
- `agreement-<agreement_id>`: `WithholdingAgreementSigned`, `WithholdingAgreementTerminated`
  (internal: the card's last four digits and the bank's reference of the card stay in payment).
- `bill-<bill_id>` (settlement.py's bill): `CollectionRequested` (internal) opens a collection;
  `PaymentSettled` or `WithholdingCollectionFailed` (public) closes it. A bill has at most one
  open collection, so a withholding run started twice, or two runs at once (the bill stream's
  expected version orders them), asks the bank once; a failed collection is asked again by the
  next run, as attempt n + 1.

No I/O, no clock: `now` is an argument (docs/service-anatomy.md).
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar, Literal, get_args
from uuid import UUID, uuid5

from pydantic import Field

from contracts.envelope import Envelope
from contracts.events.base import Event, Fen, NonEmptyStr, UtcDatetime
from contracts.events.payment import WithholdingCollectionFailed, WithholdingFailureReason
from kernel import aggregate

# Never change: agreement and collection request ids derived from them are stored in events.
_AGREEMENT_NAMESPACE = UUID("c41d8a2e-5b7f-4e19-8a3c-2f6d9e0b1a75")
_REQUEST_NAMESPACE = UUID("e8a3b5c7-2d4f-4a61-9b8e-7c0d1f2a3b46")

FAILURE_REASONS: tuple[WithholdingFailureReason, ...] = get_args(WithholdingFailureReason)


def agreement_id_for(insured_person_id: UUID, bank_code: str, card_ref: str) -> UUID:
    """One agreement per person and card (the bank's reference of the card, never its number)."""
    return uuid5(_AGREEMENT_NAMESPACE, f"{insured_person_id}/{bank_code}/{card_ref}")


def agreement_stream(agreement_id: UUID) -> str:
    return f"agreement-{agreement_id}"


def collection_request_id_for(bill_id: UUID, attempt: int) -> UUID:
    """The bill's n-th collection: a run started twice names the same request."""
    return uuid5(_REQUEST_NAMESPACE, f"{bill_id}/{attempt}")


# --- payment's own (internal) events -----------------------------------------------------------


class WithholdingAgreementSigned(Event):
    """A bank confirmed that the person signed a withholding agreement for one card."""

    public: ClassVar[bool] = False

    agreement_id: UUID
    insured_person_id: UUID
    bank_code: NonEmptyStr
    bank: NonEmptyStr
    card_ref: NonEmptyStr
    card_last4: str | None = Field(pattern=r"^[0-9]{4}$")
    agreement_no: NonEmptyStr
    signed_at: UtcDatetime
    recorded_at: UtcDatetime


class WithholdingAgreementTerminated(Event):
    """The bank says the agreement ended (解除); no collection is asked under it any more."""

    public: ClassVar[bool] = False

    agreement_id: UUID
    insured_person_id: UUID
    agreement_no: NonEmptyStr
    terminated_at: UtcDatetime
    recorded_at: UtcDatetime


class CollectionRequested(Event):
    """A withholding run asks the agreement's bank to collect the bill (kernel.effects sends it)."""

    public: ClassVar[bool] = False

    collection_request_id: UUID
    bill_id: UUID
    account_id: UUID
    insured_person_id: UUID
    period: NonEmptyStr
    attempt: int = Field(ge=1)
    agreement_id: UUID
    agreement_no: NonEmptyStr
    bank_code: NonEmptyStr
    bank: NonEmptyStr
    amount_fen: Fen
    run_id: UUID
    requested_at: UtcDatetime


# --- agreements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    signed: WithholdingAgreementSigned
    active: bool
    version: int

    @property
    def agreement_id(self) -> UUID:
        return self.signed.agreement_id


def evolve_agreement(state: Agreement | None, event: Event, envelope: Envelope) -> Agreement | None:
    if isinstance(event, WithholdingAgreementSigned):
        return Agreement(event, True, envelope.stream_version)
    if state is None:
        return None
    if isinstance(event, WithholdingAgreementTerminated):
        return replace(state, active=False, version=envelope.stream_version)
    return replace(state, version=envelope.stream_version)


def replay_agreement(history: Iterable[Envelope]) -> Agreement | None:
    return aggregate.replay(history, evolve_agreement)


@dataclass(frozen=True)
class AgreementConfirmation:
    """A bank's verified word about an agreement: signed or terminated, for a person it named."""

    status: Literal["signed", "terminated"]
    agreement_no: str
    bank_code: str
    bank: str
    card_ref: str
    card_last4: str | None
    at: datetime


AgreementOutcome = Literal["signed", "reused", "terminated", "not_active"]


def confirm_agreement(
    state: Agreement | None, person: UUID, confirmation: AgreementConfirmation, now: datetime
) -> tuple[AgreementOutcome, Event | None]:
    """What the bank's confirmation does. An active agreement for the same person and card is
    reused (guide 二(一): "原已签订协议的不用重复签订"): nothing is recorded, the bank is told."""
    agreement_id = agreement_id_for(person, confirmation.bank_code, confirmation.card_ref)
    if confirmation.status == "terminated":
        if state is None or not state.active:
            return "not_active", None
        return "terminated", WithholdingAgreementTerminated(
            agreement_id=agreement_id,
            insured_person_id=person,
            agreement_no=confirmation.agreement_no,
            terminated_at=confirmation.at,
            recorded_at=now,
        )
    if state is not None and state.active:
        return "reused", None
    return "signed", WithholdingAgreementSigned(
        agreement_id=agreement_id,
        insured_person_id=person,
        bank_code=confirmation.bank_code,
        bank=confirmation.bank,
        card_ref=confirmation.card_ref,
        card_last4=confirmation.card_last4,
        agreement_no=confirmation.agreement_no,
        signed_at=confirmation.at,
        recorded_at=now,
    )


# --- collections of one bill -------------------------------------------------------------------


@dataclass(frozen=True)
class Collections:
    """What the bill's stream says about withholding: the open request, and how many were made."""

    open_request: CollectionRequested | None = None
    attempts: int = 0

    def fold(self, event: Event) -> "Collections":
        if isinstance(event, CollectionRequested):
            return Collections(event, max(self.attempts, event.attempt))
        open_request = self.open_request
        if (
            isinstance(event, WithholdingCollectionFailed)
            and open_request is not None
            and event.collection_request_id == open_request.collection_request_id
        ):
            return Collections(None, self.attempts)
        return self


def request_collection(
    bill_id: UUID,
    account_id: UUID,
    insured_person_id: UUID,
    period: str,
    amount_fen: int,
    collections: Collections,
    paid: bool,
    agreement: Agreement,
    run_id: UUID,
    now: datetime,
) -> CollectionRequested | None:
    """The bill's next collection, or None: paid, a collection still open (asked, not answered),
    or the agreement ended. A failed collection is asked again, as the next attempt."""
    if paid or collections.open_request is not None or not agreement.active:
        return None
    attempt = collections.attempts + 1
    return CollectionRequested(
        collection_request_id=collection_request_id_for(bill_id, attempt),
        bill_id=bill_id,
        account_id=account_id,
        insured_person_id=insured_person_id,
        period=period,
        attempt=attempt,
        agreement_id=agreement.agreement_id,
        agreement_no=agreement.signed.agreement_no,
        bank_code=agreement.signed.bank_code,
        bank=agreement.signed.bank,
        amount_fen=amount_fen,
        run_id=run_id,
        requested_at=now,
    )


def collection_failed(
    request: CollectionRequested, reason: WithholdingFailureReason, failed_at: datetime
) -> WithholdingCollectionFailed:
    return WithholdingCollectionFailed(
        collection_request_id=request.collection_request_id,
        bill_id=request.bill_id,
        account_id=request.account_id,
        insured_person_id=request.insured_person_id,
        period=request.period,
        amount_fen=request.amount_fen,
        bank=request.bank,
        reason=reason,
        failed_at=failed_at,
    )


def failure_reason(code: str | None) -> WithholdingFailureReason:
    """A bank's refusal code as a reason of the contract; one it does not name is `refused`."""
    return next((reason for reason in FAILURE_REASONS if reason == code), "refused")
