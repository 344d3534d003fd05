"""Bank withholding's pure code (services/payment/withholding.py, settlement.py's overdue and the
bill's collections, bank.py's gateway, the settings' bank gateway knobs and the signed agreement
notice): agreements signed once per person and card, one open collection per bill, the bank's
answers read as kernel.effects expects them. No database, no Kafka."""

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import ValidationError

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.payment import BillIssued, BillItem, BillOverdue, PaymentSettled, WithholdingCollectionFailed
from kernel.effects import SendResult
from kernel.problems import Problem, Refused, Unauthorized
from services.payment import settlement
from services.payment.bank import CollectionOrder, HttpBankGateway
from services.payment.channels import ChannelNotification, bank_by_code
from services.payment.channels.hmac_json import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HmacVerifier,
    sign,
    verify_agreement,
)
from services.payment.settings import PaymentSettings
from services.payment.withholding import (
    Agreement,
    AgreementConfirmation,
    CollectionRequested,
    Collections,
    WithholdingAgreementSigned,
    WithholdingAgreementTerminated,
    agreement_id_for,
    agreement_stream,
    collection_failed,
    collection_request_id_for,
    confirm_agreement,
    evolve_agreement,
    failure_reason,
    replay_agreement,
    request_collection,
)
from tests.support.payment import REAL, WITHHOLDING_SECRET, agreement_notice, signed_by_bank

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
SIGNED_AT = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
AMOUNT = 170000
PERSON = UUID("6f0c2a1e-3b4d-4c5e-8f9a-0b1c2d3e4f50")
CARD = "CARD-6222021234"
ID_NUMBER = "320402199001011234"
NAME = "张三"
GATEWAY_SECRET = "a-test-bank-gateway-secret-of-32-bytes"


def wrapped(events: list[Event], stream: str) -> list[Envelope]:
    return [
        Envelope.wrap(e, stream_id=stream, stream_version=i, producer="payment", correlation_id="c")
        for i, e in enumerate(events, start=1)
    ]


def confirmation(status: str = "signed", card_ref: str = CARD, agreement_no: str = "AG-1") -> AgreementConfirmation:
    return AgreementConfirmation(
        status=status,  # type: ignore[arg-type]
        agreement_no=agreement_no,
        bank_code="ICBC",
        bank="工商银行",
        card_ref=card_ref,
        card_last4=card_ref[-4:],
        at=SIGNED_AT,
    )


def signed_event(person: UUID = PERSON) -> WithholdingAgreementSigned:
    outcome, event = confirm_agreement(None, person, confirmation(), NOW)
    assert outcome == "signed" and isinstance(event, WithholdingAgreementSigned)
    return event


def agreement_of(events: list[Event]) -> Agreement:
    state = replay_agreement(wrapped(events, agreement_stream(agreement_id_for(PERSON, "ICBC", CARD))))
    assert state is not None
    return state


def issued(bill_id: UUID | None = None) -> BillIssued:
    return BillIssued(
        bill_id=bill_id or uuid4(), account_id=uuid4(), insured_person_id=PERSON, period="2026-11",
        items=[BillItem(insurance="pension", tier=3, amount_fen=120000),
               BillItem(insurance="medical", tier=5, amount_fen=50000)],
        amount_fen=AMOUNT, due_on=date(2026, 12, 15), issued_at=NOW,
    )  # fmt: skip


def request_for(
    bill: BillIssued, collections: Collections, agreement: Agreement, *, paid: bool = False
) -> CollectionRequested | None:
    return request_collection(
        bill.bill_id, bill.account_id, bill.insured_person_id, bill.period, bill.amount_fen,
        collections, paid, agreement, uuid4(), NOW,
    )  # fmt: skip


def bill_of(events: list[Event]) -> settlement.Bill:
    bill = settlement.replay(wrapped(events, f"bill-{uuid4()}"))
    assert bill is not None
    return bill


# --- agreements --------------------------------------------------------------------------------


def test_an_agreement_is_one_per_person_bank_and_card() -> None:
    assert agreement_id_for(PERSON, "ICBC", CARD) == agreement_id_for(PERSON, "ICBC", CARD)
    assert agreement_id_for(PERSON, "ICBC", CARD) != agreement_id_for(PERSON, "ICBC", "CARD-6222029999")
    assert agreement_id_for(PERSON, "ICBC", CARD) != agreement_id_for(PERSON, "ABC", CARD)
    assert agreement_id_for(PERSON, "ICBC", CARD) != agreement_id_for(uuid4(), "ICBC", CARD)


def test_the_first_signature_records_the_agreement() -> None:
    outcome, event = confirm_agreement(None, PERSON, confirmation(), NOW)
    assert outcome == "signed"
    assert isinstance(event, WithholdingAgreementSigned)
    assert event.agreement_id == agreement_id_for(PERSON, "ICBC", CARD)
    assert (event.insured_person_id, event.bank_code, event.bank) == (PERSON, "ICBC", "工商银行")
    assert (event.card_ref, event.card_last4, event.agreement_no) == (CARD, "1234", "AG-1")
    assert (event.signed_at, event.recorded_at) == (SIGNED_AT, NOW)


def test_the_same_card_signed_again_while_active_is_reused() -> None:
    state = agreement_of([signed_event()])
    assert state.active
    assert confirm_agreement(state, PERSON, confirmation(agreement_no="AG-2"), NOW) == ("reused", None)


def test_a_termination_of_an_active_agreement_is_recorded() -> None:
    state = agreement_of([signed_event()])
    outcome, event = confirm_agreement(state, PERSON, confirmation("terminated"), NOW)
    assert outcome == "terminated"
    assert isinstance(event, WithholdingAgreementTerminated)
    assert event.agreement_id == state.agreement_id
    assert (event.insured_person_id, event.agreement_no) == (PERSON, "AG-1")
    assert (event.terminated_at, event.recorded_at) == (SIGNED_AT, NOW)


def test_a_termination_without_an_active_agreement_records_nothing() -> None:
    assert confirm_agreement(None, PERSON, confirmation("terminated"), NOW) == ("not_active", None)
    signed = signed_event()
    _, ended = confirm_agreement(agreement_of([signed]), PERSON, confirmation("terminated"), NOW)
    assert ended is not None
    inactive = agreement_of([signed, ended])
    assert not inactive.active
    assert confirm_agreement(inactive, PERSON, confirmation("terminated"), NOW) == ("not_active", None)


def test_an_agreement_signed_again_after_termination_is_recorded_again() -> None:
    signed = signed_event()
    _, ended = confirm_agreement(agreement_of([signed]), PERSON, confirmation("terminated"), NOW)
    assert ended is not None
    outcome, again = confirm_agreement(agreement_of([signed, ended]), PERSON, confirmation(agreement_no="AG-3"), NOW)
    assert outcome == "signed"
    assert isinstance(again, WithholdingAgreementSigned) and again.agreement_no == "AG-3"
    state = agreement_of([signed, ended, again])
    assert state.active and state.version == 3 and state.signed.agreement_no == "AG-3"


def test_replay_follows_the_agreement_stream() -> None:
    assert replay_agreement([]) is None
    signed = signed_event()
    state = agreement_of([signed])
    assert (state.active, state.version, state.agreement_id) == (True, 1, signed.agreement_id)
    _, ended = confirm_agreement(state, PERSON, confirmation("terminated"), NOW)
    assert ended is not None
    state = agreement_of([signed, ended])
    assert (state.active, state.version, state.signed) == (False, 2, signed)


def test_evolve_ignores_a_termination_before_any_signature() -> None:
    _, ended = confirm_agreement(agreement_of([signed_event()]), PERSON, confirmation("terminated"), NOW)
    assert ended is not None
    envelope = wrapped([ended], "agreement-x")[0]
    assert evolve_agreement(None, ended, envelope) is None


# --- collections of one bill -------------------------------------------------------------------


def test_collections_fold_opens_and_closes_the_request() -> None:
    bill = issued()
    agreement = agreement_of([signed_event()])
    first = request_for(bill, Collections(), agreement)
    assert first is not None
    opened = Collections().fold(first)
    assert (opened.open_request, opened.attempts) == (first, 1)
    closed = opened.fold(collection_failed(first, "insufficient_funds", NOW))
    assert (closed.open_request, closed.attempts) == (None, 1)
    assert opened.fold(bill) == opened


def test_a_collection_is_asked_as_attempt_one_then_two_after_a_failure() -> None:
    bill = issued()
    agreement = agreement_of([signed_event()])
    first = request_for(bill, Collections(), agreement)
    assert first is not None
    assert first.attempt == 1
    assert first.collection_request_id == collection_request_id_for(bill.bill_id, 1)
    assert (first.bill_id, first.account_id, first.insured_person_id) == (
        bill.bill_id, bill.account_id, bill.insured_person_id,
    )  # fmt: skip
    assert (first.period, first.amount_fen, first.requested_at) == ("2026-11", AMOUNT, NOW)
    assert (first.agreement_id, first.agreement_no) == (agreement.agreement_id, "AG-1")
    assert (first.bank_code, first.bank) == ("ICBC", "工商银行")

    open_one = Collections().fold(first)
    assert request_for(bill, open_one, agreement) is None

    after_failure = open_one.fold(collection_failed(first, "insufficient_funds", NOW))
    second = request_for(bill, after_failure, agreement)
    assert second is not None
    assert second.attempt == 2
    assert second.collection_request_id == collection_request_id_for(bill.bill_id, 2)
    assert second.collection_request_id != first.collection_request_id


def test_a_failure_of_another_request_leaves_the_open_one_open() -> None:
    bill = issued()
    agreement = agreement_of([signed_event()])
    first = request_for(bill, Collections(), agreement)
    assert first is not None
    open_one = Collections().fold(first)
    stranger = first.model_copy(update={"collection_request_id": uuid4()})
    still = open_one.fold(collection_failed(stranger, "insufficient_funds", NOW))
    assert still.open_request == first
    assert request_for(bill, still, agreement) is None


def test_no_collection_for_a_paid_bill_or_an_ended_agreement() -> None:
    bill = issued()
    signed = signed_event()
    active = agreement_of([signed])
    assert request_for(bill, Collections(), active, paid=True) is None
    _, ended = confirm_agreement(active, PERSON, confirmation("terminated"), NOW)
    assert ended is not None
    assert request_for(bill, Collections(), agreement_of([signed, ended])) is None


def test_collection_request_ids_are_deterministic() -> None:
    bill_id = uuid4()
    assert collection_request_id_for(bill_id, 1) == collection_request_id_for(bill_id, 1)
    assert collection_request_id_for(bill_id, 1) != collection_request_id_for(bill_id, 2)
    assert collection_request_id_for(bill_id, 1) != collection_request_id_for(uuid4(), 1)


def test_a_failed_collection_copies_the_request() -> None:
    bill = issued()
    request = request_for(bill, Collections(), agreement_of([signed_event()]))
    assert request is not None
    failed_at = NOW + timedelta(hours=3)
    failed = collection_failed(request, "card_not_activated", failed_at)
    assert isinstance(failed, WithholdingCollectionFailed)
    assert failed.collection_request_id == request.collection_request_id
    assert (failed.bill_id, failed.account_id, failed.insured_person_id) == (
        bill.bill_id, bill.account_id, bill.insured_person_id,
    )  # fmt: skip
    assert (failed.amount_fen, failed.bank, failed.period) == (AMOUNT, "工商银行", "2026-11")
    assert (failed.reason, failed.failed_at) == ("card_not_activated", failed_at)


@pytest.mark.parametrize(
    "code", ["insufficient_funds", "agreement_not_found", "card_not_activated", "account_abnormal", "refused", "other"]
)
def test_a_known_failure_code_is_its_reason(code: str) -> None:
    assert failure_reason(code) == code


@pytest.mark.parametrize("code", [None, "", "INSUFFICIENT_FUNDS", "bank_http_400", "timeout"])
def test_any_other_failure_code_is_refused(code: str | None) -> None:
    assert failure_reason(code) == "refused"


# --- the bill: overdue and collections ---------------------------------------------------------


def test_a_bill_is_overdue_only_from_the_day_after_its_due_day() -> None:
    bill = bill_of([issued()])
    due_on = bill.issued.due_on
    assert settlement.overdue(bill, due_on - timedelta(days=1), NOW) is None
    assert settlement.overdue(bill, due_on, NOW) is None
    late = datetime(2026, 12, 16, 1, 0, tzinfo=UTC)
    overdue = settlement.overdue(bill, due_on + timedelta(days=1), late)
    assert isinstance(overdue, BillOverdue)
    assert (overdue.bill_id, overdue.account_id, overdue.insured_person_id) == (
        bill.issued.bill_id, bill.issued.account_id, bill.issued.insured_person_id,
    )  # fmt: skip
    assert (overdue.period, overdue.amount_fen, overdue.due_on, overdue.overdue_at) == (
        "2026-11", AMOUNT, due_on, late,
    )  # fmt: skip


def test_a_settled_bill_is_never_overdue() -> None:
    bill_issued = issued()
    paid = ChannelNotification(
        channel="bank_counter", transaction_id="C-1", out_trade_no=str(bill_issued.bill_id),
        amount_fen=AMOUNT, paid_at=NOW, bank=bank_by_code("ICBC"),
    )  # fmt: skip
    settled = settlement.decide(bill_of([bill_issued]), paid, NOW)
    assert isinstance(settled, PaymentSettled)
    bill = bill_of([bill_issued, settled])
    assert bill.settled is not None
    assert settlement.overdue(bill, date(2027, 1, 20), NOW) is None


def test_a_bill_already_overdue_is_not_recorded_overdue_again() -> None:
    bill_issued = issued()
    first = settlement.overdue(bill_of([bill_issued]), date(2026, 12, 16), NOW)
    assert first is not None
    bill = bill_of([bill_issued, first])
    assert bill.overdue == first
    assert settlement.overdue(bill, date(2026, 12, 17), NOW) is None


def test_the_bill_follows_its_collections() -> None:
    bill_issued = issued()
    agreement = agreement_of([signed_event()])
    assert bill_of([bill_issued]).collections == Collections()
    first = request_for(bill_issued, Collections(), agreement)
    assert first is not None
    bill = bill_of([bill_issued, first])
    assert (bill.collections.open_request, bill.collections.attempts) == (first, 1)
    assert request_for(bill_issued, bill.collections, agreement) is None
    failed = collection_failed(first, "insufficient_funds", NOW)
    bill = bill_of([bill_issued, first, failed])
    assert (bill.collections.open_request, bill.collections.attempts) == (None, 1)
    assert bill.version == 3
    second = request_for(bill_issued, bill.collections, agreement)
    assert second is not None and second.attempt == 2


# --- the bank's gateway ------------------------------------------------------------------------


def order(amount_fen: Any = AMOUNT) -> CollectionOrder:
    return CollectionOrder(
        collection_request_id=UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        bill_id=UUID("11111111-2222-4333-8444-555555555555"),
        period="2026-11",
        agreement_no="AG-1",
        bank_code="ICBC",
        amount_fen=amount_fen,
    )


@pytest.mark.parametrize("amount", [170000.0, 0, -1, True, "170000"])
def test_a_collection_order_takes_only_a_positive_int_of_fen(amount: Any) -> None:
    with pytest.raises(TypeError):
        order(amount)


class Bank:
    """A bank's gateway answering every request with one response; keeps what it was sent."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    def gateway(self) -> HttpBankGateway:
        return HttpBankGateway("https://bank-gateway.example.cn/", GATEWAY_SECRET, transport=httpx.MockTransport(self))


def answering(status: int, body: dict[str, Any] | None = None) -> Bank:
    return Bank(lambda _: httpx.Response(status, json=body) if body is not None else httpx.Response(status))


async def test_the_request_carries_the_order_signed_with_our_secret() -> None:
    bank = answering(202, {"reference": "R1"})
    gateway = bank.gateway()
    try:
        result = await gateway.send(order())
    finally:
        await gateway.aclose()
    assert result == SendResult("accepted", reference="R1")
    [request] = bank.requests
    assert request.method == "POST"
    assert str(request.url) == "https://bank-gateway.example.cn/collections"
    body = json.loads(request.content)
    assert body["collection_request_id"] == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert body["out_trade_no"] == "11111111-2222-4333-8444-555555555555"
    assert (body["agreement_no"], body["bank_code"], body["period"]) == ("AG-1", "ICBC", "2026-11")
    assert body["amount_fen"] == AMOUNT and type(body["amount_fen"]) is int
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert request.headers[SIGNATURE_HEADER] == sign(GATEWAY_SECRET, timestamp, request.content)
    assert request.headers[SIGNATURE_HEADER] != sign("another-secret", timestamp, request.content)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"reference": "R1"}, SendResult("accepted", reference="R1")),
        (202, {"reference": "R1"}, SendResult("accepted", reference="R1")),
        (409, {"reference": "R0"}, SendResult("accepted", reference="R0")),
        (409, None, SendResult("accepted")),
        (422, {"code": "agreement_not_found"}, SendResult("permanent", error_code="agreement_not_found")),
        (400, None, SendResult("permanent", error_code="bank_http_400")),
        (503, None, SendResult("retryable", error_code="bank_http_503")),
        (429, None, SendResult("retryable", error_code="bank_http_429")),
    ],
)
async def test_the_bank_s_answer_to_a_send(status: int, body: dict[str, Any] | None, expected: SendResult) -> None:
    gateway = answering(status, body).gateway()
    try:
        assert await gateway.send(order()) == expected
    finally:
        await gateway.aclose()


async def test_a_redirect_is_an_unknown_outcome() -> None:
    bank = Bank(lambda _: httpx.Response(302, headers={"Location": "https://elsewhere.example.cn/collections"}))
    gateway = bank.gateway()
    try:
        with pytest.raises(RuntimeError, match="outcome unknown"):
            await gateway.send(order())
    finally:
        await gateway.aclose()
    assert len(bank.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, None, None),
        (200, {"reference": "R9"}, SendResult("accepted", reference="R9")),
        (500, None, SendResult("retryable", error_code="bank_http_500")),
    ],
)
async def test_the_bank_s_answer_to_a_lookup(
    status: int, body: dict[str, Any] | None, expected: SendResult | None
) -> None:
    bank = answering(status, body)
    gateway = bank.gateway()
    try:
        assert await gateway.lookup(order(), NOW - timedelta(hours=1), NOW) == expected
    finally:
        await gateway.aclose()
    [request] = bank.requests
    assert request.method == "GET"
    assert request.url.path == "/collections/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert request.headers[SIGNATURE_HEADER] == sign(GATEWAY_SECRET, request.headers[TIMESTAMP_HEADER], b"")


# --- settings ----------------------------------------------------------------------------------


def test_production_with_a_real_bank_gateway_starts() -> None:
    settings = PaymentSettings(**REAL)
    assert settings.payment_bank_gateway == "http"
    assert settings.payment_bank_gateway_url == REAL["payment_bank_gateway_url"]
    assert settings.payment_bank_gateway_secret.get_secret_value() == REAL["payment_bank_gateway_secret"]


def test_production_refuses_the_shipped_bank_gateway_secret() -> None:
    given = {key: value for key, value in REAL.items() if key != "payment_bank_gateway_secret"}
    with pytest.raises(ValidationError, match="PAYMENT_BANK_GATEWAY_SECRET is a shipped example secret"):
        PaymentSettings(**given)


def test_production_refuses_the_local_bank() -> None:
    with pytest.raises(ValidationError, match="PAYMENT_BANK_GATEWAY=local collects nothing"):
        PaymentSettings(**{**REAL, "payment_bank_gateway": "local"})


def test_production_refuses_a_gateway_url_without_tls() -> None:
    with pytest.raises(ValidationError, match="https outside development"):
        PaymentSettings(**{**REAL, "payment_bank_gateway_url": "http://bank-gateway.example.cn"})


def test_development_refuses_the_http_gateway_without_a_url() -> None:
    with pytest.raises(ValidationError, match="needs PAYMENT_BANK_GATEWAY_URL"):
        PaymentSettings(payment_bank_gateway="http", payment_bank_gateway_url="")
    plain = PaymentSettings(payment_bank_gateway="http", payment_bank_gateway_url="http://localhost:9000")
    assert plain.payment_bank_gateway_url == "http://localhost:9000"
    assert PaymentSettings().payment_bank_gateway == "local"


def test_the_collection_lease_is_at_least_three_call_timeouts() -> None:
    with pytest.raises(ValidationError, match="at least 3 x the call timeout"):
        PaymentSettings(payment_collection_timeout_seconds=10.0, payment_collection_lease_seconds=29.0)
    settings = PaymentSettings(payment_collection_timeout_seconds=10.0, payment_collection_lease_seconds=30.0)
    assert settings.payment_collection_lease_seconds == 30.0


# --- the bank's signed agreement notice --------------------------------------------------------

WITHHOLDING = HmacVerifier("bank_withholding", WITHHOLDING_SECRET)


def refusal(headers: dict[str, str], body: bytes, verifier: HmacVerifier = WITHHOLDING) -> Problem:
    with pytest.raises(Problem) as caught:
        verify_agreement(verifier, headers, body, now=datetime.now(UTC))
    return caught.value


def notice_fields(**changes: Any) -> dict[str, Any]:
    return {
        "status": "signed", "agreement_no": "AG-1", "bank_code": "ICBC", "card_ref": CARD, "card_last4": "1234",
        "id_number": ID_NUMBER, "name": NAME, "signed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        **changes,
    }  # fmt: skip


def test_a_signed_agreement_notice_is_read() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    headers, body = agreement_notice(ID_NUMBER, NAME, CARD, "AG-1")
    notice = verify_agreement(WITHHOLDING, headers, body, now=datetime.now(UTC))
    assert (notice.status, notice.agreement_no) == ("signed", "AG-1")
    assert (notice.bank.code, notice.bank.name) == ("ICBC", "工商银行")
    assert (notice.card_ref, notice.card_last4) == (CARD, "1234")
    assert (notice.id_number, notice.name) == (ID_NUMBER, NAME)
    assert notice.at.tzinfo is not None
    assert before - timedelta(seconds=1) <= notice.at <= datetime.now(UTC)


def test_a_termination_notice_is_read() -> None:
    headers, body = agreement_notice(ID_NUMBER, NAME, CARD, "AG-1", status="terminated", bank_code="ABC")
    notice = verify_agreement(WITHHOLDING, headers, body, now=datetime.now(UTC))
    assert (notice.status, notice.bank.code, notice.bank.name) == ("terminated", "ABC", "农业银行")


def test_the_notice_never_shows_the_person_in_its_representation() -> None:
    headers, body = agreement_notice(ID_NUMBER, NAME, CARD, "AG-1")
    notice = verify_agreement(WITHHOLDING, headers, body, now=datetime.now(UTC))
    shown = repr(notice) + str(notice)
    assert ID_NUMBER not in shown and NAME not in shown
    assert "AG-1" in shown


@pytest.mark.parametrize("status", ["pending", "SIGNED", None, 1])
def test_a_notice_of_another_status_is_refused(status: Any) -> None:
    headers, body = signed_by_bank(notice_fields(status=status))
    problem = refusal(headers, body)
    assert isinstance(problem, Refused)
    assert (problem.status, problem.code) == (422, "invalid_notification")


def test_a_notice_of_an_unknown_bank_is_refused() -> None:
    headers, body = agreement_notice(ID_NUMBER, NAME, CARD, "AG-1", bank_code="CMB")
    problem = refusal(headers, body)
    assert isinstance(problem, Refused)
    assert (problem.status, problem.code) == (422, "unknown_bank")


def test_a_notice_signed_with_another_secret_is_refused() -> None:
    headers, body = signed_by_bank(notice_fields(), secret="another-secret-of-more-than-32-bytes-xxxxx")
    problem = refusal(headers, body)
    assert isinstance(problem, Unauthorized)
    assert (problem.status, problem.code) == (401, "invalid_signature")


def test_a_changed_notice_is_refused() -> None:
    headers, body = agreement_notice(ID_NUMBER, NAME, CARD, "AG-1")
    problem = refusal(headers, body.replace(b"AG-1", b"AG-2"))
    assert isinstance(problem, Unauthorized)
    assert problem.code == "invalid_signature"


def test_agreements_come_only_from_the_withholding_channel() -> None:
    headers, body = signed_by_bank(notice_fields(), secret="a-counter-secret-of-more-than-32-bytes-xx")
    counter = HmacVerifier("bank_counter", "a-counter-secret-of-more-than-32-bytes-xx")
    with pytest.raises(ValueError, match="bank_withholding"):
        verify_agreement(counter, headers, body, now=datetime.now(UTC))
