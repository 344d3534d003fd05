"""payment's pure decisions: contribution accounts, their tiers and their monthly bills.

Three kinds of stream, all in payment's own store:
- `submission-<application_id>`: the tiers of each submission (attempt) of an application, as
  enrollment published them (`SubmissionNoted`, internal). payment opens the account from the
  approved attempt's tiers, so it must remember them: `ApplicationApproved` does not repeat them.
- `account-<account_id>`: `ContributionAccountOpened` (public), then `TiersChanged` and
  `PeriodBilled` (internal). The account knows which months it billed, so a change of tiers
  applies from the first month not yet billed, and appending to one stream with an expected
  version orders a change of tiers and a billing run that meet.
- `bill-<bill_id>`: `BillIssued` (public; the contract names the bill as its stream key).

Ids follow from what they identify (uuid5), so a redelivered or replayed event, or a billing
run started twice, names the same account and the same bills. Money is integer fen throughout
(contracts.events.base.Fen). No I/O, no clock: `now` and `today` are arguments.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import ClassVar, Literal, Self
from uuid import UUID, uuid5

from pydantic import Field

from contracts.envelope import Envelope
from contracts.events.base import Event, Fen, MedicalTier, PensionTier, UtcDatetime
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from contracts.events.payment import BillIssued, BillItem, ContributionAccountOpened, Period
from kernel import aggregate
from kernel.clock import local_date
from kernel.problems import Refused
from services.payment.tariff import TariffBook

# Never change: account and bill ids derived from them are stored in events and on Kafka.
_ACCOUNT_NAMESPACE = UUID("3b0f4d5e-8a51-4c1e-9a7b-6c2d1e0f9a41")
_BILL_NAMESPACE = UUID("a7e2c9d4-1f63-4b85-8e0a-5d4c3b2a1f97")

BillStatus = Literal["due", "paid", "overdue"]


def account_id_for(insured_person_id: UUID) -> UUID:
    """One contribution account per insured person, whatever approval or redelivery opens it."""
    return uuid5(_ACCOUNT_NAMESPACE, str(insured_person_id))


def bill_id_for(account_id: UUID, period: "Month") -> UUID:
    """One bill per account and month: a billing run started twice names the same bills."""
    return uuid5(_BILL_NAMESPACE, f"{account_id}/{period}")


def account_stream(account_id: UUID) -> str:
    return f"account-{account_id}"


def bill_stream(bill_id: UUID) -> str:
    return f"bill-{bill_id}"


def submission_stream(application_id: UUID) -> str:
    return f"submission-{application_id}"


@dataclass(frozen=True, order=True)
class Month:
    """A contribution month (缴费月份), counted on the calendar of Changzhou (kernel.clock)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Self:
        try:
            year, month = text.split("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError(text)
            return cls(int(year), int(month))
        except ValueError as exc:
            raise Refused("invalid_period", f"缴费月份“{text}”格式不正确，应为YYYY-MM，例如2026-03。") from exc

    @classmethod
    def of(cls, day: date) -> Self:
        return cls(day.year, day.month)

    @classmethod
    def at(cls, moment: datetime) -> Self:
        """The month in Changzhou at `moment` (Asia/Shanghai: 1 March 00:30 there is still 28 February in UTC)."""
        return cls.of(local_date(moment))

    def next(self) -> "Month":
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, both included (empty when `last` is earlier)."""
    out: list[Month] = []
    current = first
    while current <= last:
        out.append(current)
        current = current.next()
    return out


def due_on(period: Month, due_day: int) -> date:
    """A month's contributions are due on `due_day` of the following month (PAYMENT_DUE_DAY;
    at most 28, so that every month has that day)."""
    following = period.next()
    return date(following.year, following.month, due_day)


def bill_status(due: date, paid: bool, today: date) -> BillStatus:
    """Computed when read, against `today` in Changzhou: a bill unpaid at the end of its due day
    is overdue from the next day (no job has to run for a bill to become overdue)."""
    if paid:
        return "paid"
    return "overdue" if today > due else "due"


@dataclass(frozen=True)
class Tiers:
    pension: int | None
    medical: int | None

    def __post_init__(self) -> None:
        if self.pension is not None and not 1 <= self.pension <= 5:
            raise Refused("invalid_tier", "养老保险缴费档次只能是一档至五档或“无”。")
        if self.medical is not None and self.medical != 5:
            raise Refused("invalid_tier", "医疗保险仅有第五档，可选择五档或“无”。")
        if self.pension is None and self.medical is None:
            raise Refused("nothing_to_enrol", "养老保险和医疗保险不能同时选择“无”，请至少参加一项。")


def bill_items(tiers: Tiers, book: TariffBook, period: Month) -> list[BillItem]:
    """The dues of one month from that year's tariff; `tariff_missing` when the year has none."""
    tariff = book.of_year(period.year)
    items: list[BillItem] = []
    if tiers.pension is not None:
        items.append(BillItem(insurance="pension", tier=tiers.pension, amount_fen=tariff.pension_fen(tiers.pension)))
    if tiers.medical is not None:
        items.append(BillItem(insurance="medical", tier=tiers.medical, amount_fen=tariff.medical_fen(tiers.medical)))
    return items


# --- payment's own (internal) events -----------------------------------------------------------


class SubmissionNoted(Event):
    """The tiers of one submission, as enrollment published them in `EnrollmentSubmitted`."""

    public: ClassVar[bool] = False

    application_id: UUID
    applicant_id: UUID
    attempt: int = Field(ge=1)
    pension_tier: PensionTier | None
    medical_tier: MedicalTier | None
    submitted_at: UtcDatetime


class TiersChanged(Event):
    """The insured person chose other tiers; they apply from `effective_from` on (the first
    month not yet billed when they asked)."""

    public: ClassVar[bool] = False

    account_id: UUID
    insured_person_id: UUID
    pension_tier: PensionTier | None
    medical_tier: MedicalTier | None
    effective_from: Period
    changed_at: UtcDatetime


class PeriodBilled(Event):
    """The account's month was billed (the bill itself is `BillIssued` on the bill's stream)."""

    public: ClassVar[bool] = False

    account_id: UUID
    period: Period
    bill_id: UUID
    amount_fen: Fen


# --- submissions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submissions:
    """The noted submissions of one application, by attempt."""

    by_attempt: Mapping[int, SubmissionNoted] = field(default_factory=dict)
    version: int = 0


def evolve_submissions(state: Submissions | None, event: Event, envelope: Envelope) -> Submissions | None:
    current = state or Submissions()
    if isinstance(event, SubmissionNoted):
        # The first noted tiers of an attempt stay: an attempt is submitted once (enrollment).
        return Submissions({event.attempt: event, **current.by_attempt}, envelope.stream_version)
    return replace(current, version=envelope.stream_version)


def replay_submissions(history: Iterable[Envelope]) -> Submissions:
    return aggregate.replay(history, evolve_submissions) or Submissions()


def note_submission(state: Submissions, submitted: EnrollmentSubmitted) -> SubmissionNoted | None:
    """None when this attempt is noted already (a redelivery, or the history replayed)."""
    if submitted.attempt in state.by_attempt:
        return None
    return SubmissionNoted(
        application_id=submitted.application_id,
        applicant_id=submitted.applicant_id,
        attempt=submitted.attempt,
        pension_tier=submitted.pension_tier,
        medical_tier=submitted.medical_tier,
        submitted_at=submitted.submitted_at,
    )


class SubmissionUnknown(ValueError):
    """An approval whose submission payment never saw: a fault of the history it was given (the
    consumer retries, then dead-letters it for an operator), never an account with guessed tiers."""


# --- accounts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    opened: ContributionAccountOpened
    opened_event_id: UUID
    correlation_id: str
    # (first month, tiers) in the order chosen; the last one whose month has come applies.
    schedule: tuple[tuple[Month, Tiers], ...]
    billed: frozenset[Month]
    version: int

    @property
    def account_id(self) -> UUID:
        return self.opened.account_id

    @property
    def first_period(self) -> Month:
        """Bills start with the month of the approval (guide Q6: payment follows approval)."""
        return Month.at(self.opened.opened_at)

    def tiers_for(self, period: Month) -> Tiers:
        chosen = self.schedule[0][1]
        for start, tiers in self.schedule:
            if start <= period:
                chosen = tiers
        return chosen

    @property
    def next_unbilled(self) -> Month:
        """The first month after the last billed one; the approval month while nothing is billed."""
        return max(self.billed).next() if self.billed else self.first_period

    @property
    def latest_tiers(self) -> tuple[Month, Tiers]:
        """The tiers chosen last and the month they apply from."""
        return self.schedule[-1]


def evolve(account: Account | None, event: Event, envelope: Envelope) -> Account | None:
    """One stored event applied to the account; `event` is already upcast to its newest version."""
    if isinstance(event, ContributionAccountOpened):
        tiers = Tiers(event.pension_tier, event.medical_tier)
        return Account(
            opened=event,
            opened_event_id=envelope.event_id,
            correlation_id=envelope.correlation_id,
            schedule=((Month.at(event.opened_at), tiers),),
            billed=frozenset(),
            version=envelope.stream_version,
        )
    if account is None:
        return None
    if isinstance(event, TiersChanged):
        start = Month.parse(event.effective_from)
        kept = tuple((m, t) for m, t in account.schedule if m < start)
        schedule = (*kept, (start, Tiers(event.pension_tier, event.medical_tier)))
        return replace(account, schedule=schedule, version=envelope.stream_version)
    if isinstance(event, PeriodBilled):
        billed = account.billed | {Month.parse(event.period)}
        return replace(account, billed=billed, version=envelope.stream_version)
    return replace(account, version=envelope.stream_version)


def replay(history: Iterable[Envelope]) -> Account | None:
    return aggregate.replay(history, evolve)


def open_account(noted: SubmissionNoted, approved: ApplicationApproved) -> ContributionAccountOpened:
    """The account opens at the approval: `opened_at` is the decision's time, not the time payment
    heard of it, so a late or replayed delivery still bills from the approval month."""
    if noted.attempt != approved.attempt or noted.application_id != approved.application_id:
        raise ValueError("the noted submission is not the approved one")
    return ContributionAccountOpened(
        account_id=account_id_for(approved.applicant_id),
        insured_person_id=approved.applicant_id,
        application_id=approved.application_id,
        pension_tier=noted.pension_tier,
        medical_tier=noted.medical_tier,
        opened_at=approved.decided_at,
    )


def change_tiers(account: Account, tiers: Tiers, now: datetime) -> TiersChanged | None:
    """The change applies from the first month not yet billed (issue 8: "the change applies from
    the next month not yet billed"), never to a bill already issued. None when those tiers
    already apply from then on (asking twice changes nothing)."""
    start = account.next_unbilled
    if account.tiers_for(start) == tiers:
        return None
    return TiersChanged(
        account_id=account.account_id,
        insured_person_id=account.opened.insured_person_id,
        pension_tier=tiers.pension,
        medical_tier=tiers.medical,
        effective_from=str(start),
        changed_at=now,
    )


@dataclass(frozen=True)
class Billing:
    """One month billed: the public bill and the account's note of it."""

    bill: BillIssued
    billed: PeriodBilled


def bills_through(account: Account, last: Month, book: TariffBook, due_day: int, now: datetime) -> list[Billing]:
    """The bills of every month from the approval month to `last` that the account has not been
    billed for yet (a month missed by an earlier run is caught up). `tariff_missing` when a
    month's year has no tariff: then nothing is billed, not even the months before it."""
    out: list[Billing] = []
    for period in months(account.first_period, last):
        if period in account.billed:
            continue
        items = bill_items(account.tiers_for(period), book, period)
        bill_id = bill_id_for(account.account_id, period)
        amount = sum(item.amount_fen for item in items)
        bill = BillIssued(
            bill_id=bill_id,
            account_id=account.account_id,
            insured_person_id=account.opened.insured_person_id,
            period=str(period),
            items=items,
            amount_fen=amount,
            due_on=due_on(period, due_day),
            issued_at=now,
        )
        out.append(Billing(bill, PeriodBilled(account_id=account.account_id, period=str(period), bill_id=bill_id,
                                              amount_fen=amount)))  # fmt: skip
    return out
