"""payment's pure decisions: months in Changzhou, due dates, bills from the approval month, tier
changes from the first month not yet billed, integer money."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from kernel.problems import Refused
from services.payment import domain
from services.payment.domain import Month, Tiers
from services.payment.tariff import TariffBook

BOOK = TariffBook.from_folder(Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs")
T2026 = BOOK.of_year(2026)
T2027 = BOOK.of_year(2027)
PERSON = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
APPLICATION = UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def submitted(**changes: Any) -> EnrollmentSubmitted:
    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    fields = {"application_id": str(APPLICATION), "applicant_id": str(PERSON), **changes}
    return EnrollmentSubmitted.model_validate({**example, **fields})


def approved(decided_at: str = "2026-10-20T02:00:00Z", attempt: int = 1) -> ApplicationApproved:
    return ApplicationApproved(
        application_id=APPLICATION, applicant_id=PERSON, attempt=attempt, case_id=uuid4(),
        decided_at=datetime.fromisoformat(decided_at),
    )  # fmt: skip


def wrapped(events: list[Event], stream: str = "account-x") -> list[Envelope]:
    return [
        Envelope.wrap(e, stream_id=stream, stream_version=i, producer="payment", correlation_id="c-1")
        for i, e in enumerate(events, 1)
    ]


def account_of(*events: Event) -> domain.Account:
    account = domain.replay(wrapped(list(events)))
    assert account is not None
    return account


def opened(pension: int | None = 3, medical: int | None = 5, decided_at: str = "2026-10-20T02:00:00Z") -> Event:
    noted = domain.note_submission(domain.Submissions(), submitted(pension_tier=pension, medical_tier=medical))
    assert noted is not None
    return domain.open_account(noted, approved(decided_at))


def billed(account: domain.Account, last: str) -> tuple[domain.Account, list[domain.Billing]]:
    billings = domain.bills_through(account, Month.parse(last), BOOK, 15, NOW)
    history = [account.opened, *[b.billed for b in billings]]
    return account_of(*history), billings


def test_months_are_counted_in_changzhou() -> None:
    assert Month.at(datetime(2026, 2, 28, 16, 30, tzinfo=UTC)) == Month(2026, 3)  # 00:30 on 1 March there
    assert Month.at(datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == Month(2026, 2)
    assert str(Month(2026, 3)) == "2026-03" and Month.parse("2026-03") == Month(2026, 3)
    assert Month(2026, 12).next() == Month(2027, 1)
    assert domain.months(Month(2026, 11), Month(2027, 2)) == [Month(2026, 11), Month(2026, 12), Month(2027, 1),
                                                               Month(2027, 2)]  # fmt: skip
    assert domain.months(Month(2026, 11), Month(2026, 10)) == []
    for bad in ("2026-13", "2026-3", "26-03", "march", "2026-00"):
        with pytest.raises(Refused) as refused:
            Month.parse(bad)
        assert refused.value.code == "invalid_period"


def test_a_month_is_due_on_the_configured_day_of_the_following_month() -> None:
    assert domain.due_on(Month(2026, 3), 15) == date(2026, 4, 15)
    assert domain.due_on(Month(2026, 12), 28) == date(2027, 1, 28)
    assert domain.due_on(Month(2027, 1), 1) == date(2027, 2, 1)


def test_a_bill_is_overdue_from_the_day_after_its_due_date_unless_paid() -> None:
    due = date(2027, 1, 15)
    assert domain.bill_status(due, paid=False, today=date(2027, 1, 15)) == "due"
    assert domain.bill_status(due, paid=False, today=date(2027, 1, 16)) == "overdue"
    assert domain.bill_status(due, paid=True, today=date(2027, 3, 1)) == "paid"


def test_tiers_follow_the_guide() -> None:
    assert Tiers(None, 5) and Tiers(1, None)
    with pytest.raises(Refused) as refused:
        Tiers(None, None)
    assert refused.value.code == "nothing_to_enrol"
    for pension, medical in ((6, 5), (0, 5), (3, 4)):
        with pytest.raises(Refused) as refused:
            Tiers(pension, medical)
        assert refused.value.code == "invalid_tier" and "档" in refused.value.detail


def test_the_account_opens_with_the_approved_attempts_tiers_at_the_approval() -> None:
    state = domain.Submissions()
    first = domain.note_submission(state, submitted(attempt=1, pension_tier=1, medical_tier=None))
    assert first is not None
    state = domain.replay_submissions(wrapped([first], "submission-x"))
    assert domain.note_submission(state, submitted(attempt=1, pension_tier=4)) is None  # noted already
    second = domain.note_submission(state, submitted(attempt=2, pension_tier=4, medical_tier=5))
    assert second is not None
    state = domain.replay_submissions(wrapped([first, second], "submission-x"))
    assert state.version == 2 and state.by_attempt[1].pension_tier == 1
    account = domain.open_account(state.by_attempt[2], approved(attempt=2))
    assert (account.pension_tier, account.medical_tier) == (4, 5)
    assert account.account_id == domain.account_id_for(PERSON) and account.insured_person_id == PERSON
    assert account.opened_at == datetime(2026, 10, 20, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="not the approved one"):
        domain.open_account(state.by_attempt[1], approved(attempt=2))


def test_bills_start_in_the_approval_month_with_the_years_tariff() -> None:
    account = account_of(opened(pension=3, medical=5, decided_at="2026-10-31T16:30:00Z"))  # 1 Nov in Changzhou
    assert account.first_period == Month(2026, 11)
    _, billings = billed(account, "2027-01")
    bills = [b.bill for b in billings]
    assert [b.period for b in bills] == ["2026-11", "2026-12", "2027-01"]
    assert [b.due_on for b in bills] == [date(2026, 12, 15), date(2027, 1, 15), date(2027, 2, 15)]
    assert bills[0].amount_fen == T2026.pension_fen(3) + T2026.medical_fen(5)
    assert bills[2].amount_fen == T2027.pension_fen(3) + T2027.medical_fen(5)  # January: 2027's tariff
    assert [(i.insurance, i.tier) for i in bills[0].items] == [("pension", 3), ("medical", 5)]
    assert bills[0].bill_id == domain.bill_id_for(account.account_id, Month(2026, 11)) != bills[1].bill_id
    assert [b.billed.period for b in billings] == [b.period for b in bills]
    assert domain.bills_through(account, Month(2026, 10), BOOK, 15, NOW) == []  # before the approval


def test_a_month_is_billed_once_and_a_missed_month_is_caught_up() -> None:
    account = account_of(opened())
    account, first = billed(account, "2026-10")
    assert [b.bill.period for b in first] == ["2026-10"]
    assert domain.bills_through(account, Month(2026, 10), BOOK, 15, NOW) == []
    _, later = billed(account, "2026-12")
    assert [b.bill.period for b in later] == ["2026-11", "2026-12"]


def test_a_person_in_one_insurance_only_gets_one_item() -> None:
    _, billings = billed(account_of(opened(pension=None, medical=5)), "2026-10")
    assert [(i.insurance, i.amount_fen) for i in billings[0].bill.items] == [("medical", T2026.medical_fen(5))]


def test_a_tier_change_applies_from_the_first_month_not_yet_billed() -> None:
    account, _ = billed(account_of(opened(pension=3)), "2026-11")
    assert account.next_unbilled == Month(2026, 12)
    changed = domain.change_tiers(account, Tiers(5, None), NOW)
    assert changed is not None and changed.effective_from == "2026-12"
    account = account_of(account.opened, *[domain.PeriodBilled(account_id=account.account_id, period=p,
                         bill_id=uuid4(), amount_fen=1) for p in ("2026-10", "2026-11")], changed)  # fmt: skip
    assert account.tiers_for(Month(2026, 11)) == Tiers(3, 5) and account.tiers_for(Month(2027, 3)) == Tiers(5, None)
    bills = [b.bill for b in domain.bills_through(account, Month(2027, 1), BOOK, 15, NOW)]
    assert [(b.period, [i.tier for i in b.items]) for b in bills] == [("2026-12", [5]), ("2027-01", [5])]
    assert bills[0].amount_fen == T2026.pension_fen(5)
    assert domain.change_tiers(account, Tiers(5, None), NOW) is None  # asking twice changes nothing


def test_changing_twice_before_billing_keeps_the_last_choice() -> None:
    account = account_of(opened(pension=3))
    first = domain.change_tiers(account, Tiers(1, 5), NOW)
    assert first is not None and first.effective_from == "2026-10"  # nothing billed: the approval month
    account = account_of(account.opened, first)
    second = domain.change_tiers(account, Tiers(2, None), NOW)
    assert second is not None
    account = account_of(account.opened, first, second)
    assert account.schedule == ((Month(2026, 10), Tiers(2, None)),)


def test_a_missing_tariff_year_bills_nothing() -> None:
    account = account_of(opened())
    with pytest.raises(Refused) as refused:
        domain.bills_through(account, Month(2028, 1), BOOK, 15, NOW)
    assert refused.value.code == "tariff_missing" and "2028" in refused.value.detail


def test_money_is_integer_fen_everywhere() -> None:
    _, billings = billed(account_of(opened(pension=4, medical=5)), "2027-02")
    for billing in billings:
        bill = billing.bill
        amounts = [bill.amount_fen, billing.billed.amount_fen, *[i.amount_fen for i in bill.items]]
        assert all(type(a) is int for a in amounts)
        assert sum(i.amount_fen for i in bill.items) == bill.amount_fen == billing.billed.amount_fen
        on_the_wire = json.loads(json.dumps(bill.payload()))
        assert all(type(i["amount_fen"]) is int for i in on_the_wire["items"])
        assert type(on_the_wire["amount_fen"]) is int
    # the contract refuses a float amount even when it is whole
    data = billings[0].bill.payload()
    with pytest.raises(ValueError):
        type(billings[0].bill).model_validate({**data, "amount_fen": float(data["amount_fen"])})
    # and the bills of a run add up to the sum of the tariff amounts, to the fen
    total = sum(b.bill.amount_fen for b in billings)
    assert total == 3 * (T2026.pension_fen(4) + T2026.medical_fen(5)) + 2 * (
        T2027.pension_fen(4) + T2027.medical_fen(5)
    )
