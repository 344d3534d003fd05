"""payment's service layer on kernel.memory's unit of work: an account opens once whatever the
redelivery, bills are issued once, a tier change and a billing run that meet stay consistent."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from contracts.events.payment import BillIssued, ContributionAccountOpened
from contracts.upcasting import decode
from kernel.eventstore import EventStore
from kernel.memory import InMemoryState
from kernel.personal import new_data_key, seal
from kernel.problems import NotFound, Refused
from kernel.runtime import StoreOnly
from services.payment import domain
from services.payment.domain import Month, Tiers
from services.payment.service import PaymentRules, PaymentService, project_nothing
from tests.support.payment import BOOK

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.state = InMemoryState(producer="payment")
        self.service = PaymentService(
            StoreOnly(EventStore("payment")),
            PaymentRules(BOOK, due_day=15),
            units=self.state.unit_of_work,
            project=project_nothing,
        )
        self.person = uuid4()
        self.application = uuid4()

    def submitted(self, attempt: int = 1, **changes: Any) -> Envelope:
        example = EnrollmentSubmitted.model_json_schema()["examples"][0]
        event = EnrollmentSubmitted.model_validate(
            {**example, "application_id": str(self.application), "applicant_id": str(self.person),
             "attempt": attempt, "personal": self.sealed(), **changes}
        )  # fmt: skip
        return self.wrap(event, 4 + attempt)

    def sealed(self) -> dict[str, Any]:
        """The applicant's name, birth date and phone, sealed under a key of theirs (payment never opens them)."""
        fields = {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"}
        return seal(new_data_key(), self.person, fields).model_dump(mode="json")

    def approved(self, attempt: int = 1, decided_at: str = "2026-10-20T02:00:00Z", **changes: Any) -> Envelope:
        fields: dict[str, Any] = {"application_id": self.application, "applicant_id": self.person,
                                  "attempt": attempt, "case_id": uuid4(),
                                  "decided_at": datetime.fromisoformat(decided_at), **changes}  # fmt: skip
        return self.wrap(ApplicationApproved(**fields), 9)

    def wrap(self, event: Event, version: int) -> Envelope:
        return Envelope.wrap(
            event, stream_id=f"application-{self.application}", stream_version=version, producer="enrollment",
            correlation_id=f"corr-{self.application}",
        )  # fmt: skip

    async def deliver(self, envelope: Envelope) -> None:
        event = decode(envelope)
        if isinstance(event, EnrollmentSubmitted):
            await self.service.note_submission(event, envelope)
        else:
            assert isinstance(event, ApplicationApproved)
            await self.service.open_account(event, envelope)

    def published(self, kind: type[Event]) -> list[Any]:
        return [decode(e) for e in self.state.published if e.event_type == kind.event_type]

    @property
    def account_id(self) -> UUID:
        return domain.account_id_for(self.person)


@pytest.fixture
def world() -> World:
    return World()


async def test_an_approval_opens_the_account_once_whatever_the_redelivery(world: World) -> None:
    history = [world.submitted(1, pension_tier=1, medical_tier=None), world.submitted(2, pension_tier=4),
               world.approved(2)]  # fmt: skip
    for envelope in [*history, *history, history[-1]]:  # redelivered, then the whole history replayed
        await world.deliver(envelope)
    [opened] = world.published(ContributionAccountOpened)
    assert (opened.pension_tier, opened.medical_tier) == (4, 5)  # the approved attempt's tiers
    assert opened.insured_person_id == world.person and opened.account_id == world.account_id
    account_stream = world.state.load(domain.account_stream(world.account_id))
    assert [e.event_type for e in account_stream] == ["ContributionAccountOpened"]
    assert account_stream[0].correlation_id == f"corr-{world.application}"
    assert account_stream[0].causation_id == str(history[-1].event_id)
    assert len(world.state.load(domain.submission_stream(world.application))) == 2
    assert not [e for e in world.state.published if e.event_type == "SubmissionNoted"]  # internal


async def test_a_republished_approval_with_a_new_event_id_opens_nothing_more(world: World) -> None:
    await world.deliver(world.submitted())
    await world.deliver(world.approved())
    await world.deliver(world.approved())  # same decision, another event id
    assert len(world.published(ContributionAccountOpened)) == 1


async def test_an_approval_whose_submission_never_arrived_is_not_guessed(world: World) -> None:
    with pytest.raises(domain.SubmissionUnknown):
        await world.deliver(world.approved())
    assert world.state.published == [] and world.state.streams == {}


async def test_bills_are_issued_once_from_the_approval_month(world: World) -> None:
    await world.deliver(world.submitted(pension_tier=2))
    await world.deliver(world.approved(decided_at="2026-10-20T02:00:00Z"))
    bills = await world.service.bill_account(world.account_id, Month(2026, 12), NOW)
    assert [b.period for b in bills] == ["2026-10", "2026-11", "2026-12"]
    assert await world.service.bill_account(world.account_id, Month(2026, 12), NOW) == []  # twice: once
    issued: list[BillIssued] = world.published(BillIssued)
    assert [b.period for b in issued] == ["2026-10", "2026-11", "2026-12"]
    assert all(b.amount_fen == BOOK.of_year(2026).pension_fen(2) + BOOK.of_year(2026).medical_fen(5) for b in issued)
    for bill in issued:  # each bill on its own stream, keyed by the bill (the contract)
        [stored] = world.state.load(domain.bill_stream(bill.bill_id))
        assert stored.stream_version == 1 and stored.correlation_id == f"corr-{world.application}"
    account = await world.service.account(world.person)
    assert account.billed == {Month(2026, 10), Month(2026, 11), Month(2026, 12)}


async def test_a_missing_tariff_year_issues_nothing(world: World) -> None:
    await world.deliver(world.submitted())
    await world.deliver(world.approved())
    before = list(world.state.published)
    with pytest.raises(Refused) as refused:
        await world.service.bill_account(world.account_id, Month(2028, 1), NOW)
    assert refused.value.code == "tariff_missing"
    assert world.state.published == before  # not even the months of the years that have a tariff
    assert len(world.state.load(domain.account_stream(world.account_id))) == 1


async def test_a_tier_change_applies_from_the_next_unbilled_month(world: World) -> None:
    await world.deliver(world.submitted(pension_tier=3))
    await world.deliver(world.approved())
    await world.service.bill_account(world.account_id, Month(2026, 11), NOW)
    account = await world.service.change_tiers(world.person, Tiers(5, None), NOW)
    assert account.latest_tiers == (Month(2026, 12), Tiers(5, None))
    again = await world.service.change_tiers(world.person, Tiers(5, None), NOW)
    assert again.version == account.version  # the same choice twice: no new event
    [december] = await world.service.bill_account(world.account_id, Month(2026, 12), NOW)
    assert [(i.insurance, i.tier) for i in december.items] == [("pension", 5)]
    earlier = [b for b in world.published(BillIssued) if b.period != "2026-12"]
    assert all([(i.insurance, i.tier) for i in b.items] == [("pension", 3), ("medical", 5)] for b in earlier)


async def test_changing_the_tiers_of_someone_without_an_account_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as missing:
        await world.service.change_tiers(world.person, Tiers(1, 5), NOW)
    assert missing.value.code == "account_not_found"


async def test_a_tier_change_and_a_billing_run_that_meet_stay_consistent(world: World) -> None:
    await world.deliver(world.submitted(pension_tier=1))
    await world.deliver(world.approved())
    await asyncio.gather(
        world.service.bill_account(world.account_id, Month(2026, 12), NOW),
        world.service.change_tiers(world.person, Tiers(4, 5), NOW),
    )
    account = await world.service.account(world.person)
    bills: list[BillIssued] = world.published(BillIssued)
    assert len(bills) == 3 and account.billed == {Month.parse(b.period) for b in bills}
    for bill in bills:  # every bill was computed with the tiers the account says applied to its month
        tiers = account.tiers_for(Month.parse(bill.period))
        assert [i.tier for i in bill.items if i.insurance == "pension"] == [tiers.pension]
    assert account.tiers_for(account.next_unbilled) == Tiers(4, 5)


async def test_the_same_submission_delivered_twice_at_once_is_noted_once(world: World) -> None:
    submitted = world.submitted(pension_tier=2)
    await asyncio.gather(world.deliver(submitted), world.deliver(submitted))
    [noted] = world.state.load(domain.submission_stream(world.application))
    assert noted.event_type == "SubmissionNoted" and noted.data["pension_tier"] == 2
