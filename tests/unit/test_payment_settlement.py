"""Settlement decisions (services/payment/settlement.py) and the service layer taking notifications
on kernel.memory's unit of work: once per (channel, transaction), a wrong amount and an unknown
bill kept as exceptions, money for a paid bill kept as an overpayment, never a second settlement."""

import asyncio
import json
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr, ValidationError

from contracts.events.payment import BillIssued, BillItem, PaymentSettled
from contracts.upcasting import decode
from kernel.eventstore import EventStore
from kernel.memory import InMemoryState
from kernel.problems import Problem
from kernel.runtime import StoreOnly
from services.payment import domain, settlement
from services.payment.app import build
from services.payment.channels import Bank, ChannelNotification, ChannelVerifiers, CollectionFailed, bank_by_code, sign
from services.payment.service import PaymentRules, PaymentService, project_nothing
from services.payment.settings import PaymentSettings
from services.payment.settlement import (
    CollectionFailureRecorded,
    OverpaymentRecorded,
    ReconciliationExceptionRecorded,
)
from services.payment.tariff import TariffBook
from tests.support.payment import BOOK, REAL, SECRET_FIELDS

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
AMOUNT = 170000


def issued(bill_id: UUID | None = None) -> BillIssued:
    return BillIssued(
        bill_id=bill_id or uuid4(), account_id=uuid4(), insured_person_id=uuid4(), period="2026-11",
        items=[BillItem(insurance="pension", tier=3, amount_fen=120000),
               BillItem(insurance="medical", tier=5, amount_fen=50000)],
        amount_fen=AMOUNT, due_on=date(2026, 12, 15), issued_at=NOW,
    )  # fmt: skip


def paid(bill_id: UUID, *, amount: int = AMOUNT, channel: str = "wechat", txn: str = "4200001") -> ChannelNotification:
    return ChannelNotification(
        channel=channel,  # type: ignore[arg-type]
        transaction_id=txn,
        out_trade_no=bill_id.hex if channel == "wechat" else str(bill_id),
        amount_fen=amount,
        paid_at=NOW,
        payer="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" if channel == "wechat" else None,
        bank=bank_by_code("ICBC") if channel == "bank_counter" else None,
    )


def bank(code: str) -> Bank:
    found = bank_by_code(code)
    assert found is not None
    return found


class World:
    def __init__(self, book: TariffBook = BOOK) -> None:
        self.state = InMemoryState(producer="payment")
        self.service = PaymentService(StoreOnly(EventStore("payment")), PaymentRules(book),
                                      units=self.state.unit_of_work, project=project_nothing)  # fmt: skip

    async def bill(self) -> BillIssued:
        bill = issued()
        async with self.state.unit_of_work() as uow:
            await uow.events.append(domain.bill_stream(bill.bill_id), 0, [bill], correlation_id="corr-bill")
        return bill

    def events(self, stream: str) -> list[object]:
        return [decode(e) for e in self.state.load(stream)]


def test_the_order_number_is_the_bill_in_either_uuid_form() -> None:
    bill = uuid4()
    assert settlement.bill_id_of(bill.hex) == bill == settlement.bill_id_of(str(bill))
    for other in ["ORDER-1", "", "g" * 32, str(bill)[:-1] + "x"]:
        assert settlement.bill_id_of(other) is None


def test_the_exact_amount_of_an_unpaid_bill_settles_it_with_the_payer_apart() -> None:
    bill = issued()
    state = settlement.Bill(bill, 1)
    decided = settlement.decide(state, paid(bill.bill_id), NOW)
    assert isinstance(decided, PaymentSettled)
    assert decided.insured_person_id == bill.insured_person_id and decided.payer_id == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert decided.payer_name_masked == "oUp****eS6o"
    assert decided.amount_fen == AMOUNT and type(decided.amount_fen) is int
    assert decided.payment_id == settlement.payment_id_for("wechat", "4200001")


@pytest.mark.parametrize("amount", [AMOUNT - 1, AMOUNT + 1, 1])
def test_another_amount_is_an_exception_and_settles_nothing(amount: int) -> None:
    bill = issued()
    decided = settlement.decide(settlement.Bill(bill, 1), paid(bill.bill_id, amount=amount), NOW)
    assert isinstance(decided, ReconciliationExceptionRecorded)
    assert (decided.code, decided.expected_fen, decided.amount_fen) == ("amount_mismatch", AMOUNT, amount)


def test_an_unknown_bill_is_an_exception() -> None:
    decided = settlement.decide(None, paid(uuid4()), NOW)
    assert isinstance(decided, ReconciliationExceptionRecorded)
    assert decided.code == "unknown_bill" and decided.bill_id is None and decided.expected_fen is None


def test_money_for_a_paid_bill_is_an_overpayment_whatever_the_amount() -> None:
    bill = issued()
    first = settlement.decide(settlement.Bill(bill, 1), paid(bill.bill_id), NOW)
    assert isinstance(first, PaymentSettled)
    state = settlement.Bill(bill, 2, first)
    for amount in (AMOUNT, 5):
        again = settlement.decide(state, paid(bill.bill_id, amount=amount, channel="bank_counter", txn="T1"), NOW)
        assert isinstance(again, OverpaymentRecorded)
        assert again.settling_payment_id == first.payment_id and again.amount_fen == amount
        assert again.bank == "工商银行"


def test_a_masked_payer_never_shows_the_whole_identifier() -> None:
    for payer in ("2088102122524333", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"):
        masked = settlement.mask_payer(payer)
        assert "*" in masked and payer not in masked and len(masked) < len(payer)
    # A POS card's last four digits are already all a channel shows of the card.
    assert settlement.mask_payer("1234") == "****1234"


async def test_a_notification_settles_once_and_repeats_answer_the_first_result() -> None:
    world = World()
    bill = await world.bill()
    first, repeat = await world.service.receive_notification(paid(bill.bill_id), NOW)
    assert (first["status"], first["outcome"], repeat) == (200, "settled", False)
    for _ in range(2):
        again, repeat = await world.service.receive_notification(paid(bill.bill_id), NOW)
        assert again == first and repeat
    settled = [e for e in world.events(domain.bill_stream(bill.bill_id)) if isinstance(e, PaymentSettled)]
    assert len(settled) == 1 and settled[0].amount_fen == AMOUNT


async def test_two_channels_paying_one_bill_at_once_settle_once_and_overpay_once() -> None:
    world = World()
    bill = await world.bill()
    results = await asyncio.gather(
        world.service.receive_notification(paid(bill.bill_id), NOW),
        world.service.receive_notification(paid(bill.bill_id, channel="bank_counter", txn="T1"), NOW),
    )
    assert sorted(r["outcome"] for r, _ in results) == ["overpayment", "settled"]
    kinds = [type(e).__name__ for e in world.events(domain.bill_stream(bill.bill_id))]
    assert kinds.count("PaymentSettled") == 1 and kinds.count("OverpaymentRecorded") == 1


async def test_a_refusal_is_recorded_and_answered_as_its_problem() -> None:
    world = World()
    bill = await world.bill()
    result, _ = await world.service.receive_notification(paid(bill.bill_id, amount=AMOUNT - 100), NOW)
    problem = world.service.refusal(result)
    assert isinstance(problem, Problem) and (problem.status, problem.code) == (422, "amount_mismatch")
    assert any("\u4e00" <= c <= "\u9fff" for c in problem.detail)
    exception_id = settlement.exception_id_for("wechat", "4200001")
    [recorded] = world.events(settlement.exception_stream(exception_id))
    assert isinstance(recorded, ReconciliationExceptionRecorded) and recorded.amount_fen == AMOUNT - 100
    assert not [e for e in world.events(domain.bill_stream(bill.bill_id)) if isinstance(e, PaymentSettled)]


async def test_a_failed_collection_is_recorded_and_acknowledged() -> None:
    world = World()
    bill = await world.bill()
    failed = CollectionFailed(transaction_id="W1", out_trade_no=str(bill.bill_id), collection_request_id="REQ-1",
                              amount_fen=AMOUNT, bank=bank("JSB"), reason="insufficient_funds",
                              failed_at=NOW)  # fmt: skip
    result, _ = await world.service.receive_notification(failed, NOW)
    assert (result["status"], result["outcome"]) == (200, "collection_failed")
    [recorded] = world.events(settlement.collection_stream(settlement.failure_id_for("W1")))
    assert isinstance(recorded, CollectionFailureRecorded)
    assert (recorded.bill_id, recorded.bank, recorded.reason) == (bill.bill_id, "江苏银行", "insufficient_funds")
    assert [type(e) for e in world.events(domain.bill_stream(bill.bill_id))] == [BillIssued]


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_the_payment_service_refuses_each_shipped_channel_secret_in_production(name: str) -> None:
    assert PaymentSettings(**REAL).payment_bank_counter_secret.get_secret_value() == REAL["payment_bank_counter_secret"]
    with pytest.raises(ValidationError, match=f"{name.upper()} is a shipped example secret"):
        PaymentSettings(**{key: value for key, value in REAL.items() if key != name})


def test_the_app_verifies_with_the_settings_secrets() -> None:
    secret = "a-test-secret-of-more-than-32-bytes-for-the-app"
    app, _ = build(PaymentSettings(payment_bank_counter_secret=SecretStr(secret)))
    verifiers: ChannelVerifiers = app.state.payment_channels
    body = json.dumps({"transaction_id": "T1", "out_trade_no": str(uuid4()), "amount_fen": AMOUNT,
                       "paid_at": "2026-12-02T09:00:00+08:00", "bank_code": "CCB"}).encode()  # fmt: skip
    stamp = str(int(NOW.timestamp()))
    headers = {"X-Flexenroll-Timestamp": stamp, "X-Flexenroll-Signature": sign(secret, stamp, body)}
    verified = verifiers.verify("bank_counter", headers, body, now=NOW)
    assert isinstance(verified, ChannelNotification) and verified.amount_fen == AMOUNT
    shipped = {**headers, "X-Flexenroll-Signature": sign(PaymentSettings().payment_bank_counter_secret
                                                         .get_secret_value(), stamp, body)}  # fmt: skip
    with pytest.raises(Problem) as refused:
        verifiers.verify("bank_counter", shipped, body, now=NOW)
    assert (refused.value.status, refused.value.code) == (401, "invalid_signature")
