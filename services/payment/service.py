"""payment's service layer: notes submissions' tiers, opens accounts on approval, changes tiers
and issues bills, each time appending the events and writing the read models in one unit of
work (kernel.unit_of_work).

The write side goes through a unit-of-work factory, so that the same code runs on PostgreSQL
(the pool, or a handler's connection as a savepoint) and on kernel.memory in unit tests. The read
models are written by `project`: on PostgreSQL the tables of projections.py, in the unit's
transaction; in memory nothing (the events are the truth, and the tests read them).
"""

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID, uuid4

import asyncpg

from contracts.envelope import Envelope
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from contracts.events.payment import BillIssued, ContributionAccountOpened, PaymentSettled
from kernel.clock import utc_now
from kernel.eventstore import ConcurrencyError
from kernel.inbox import Result
from kernel.logging import get_logger
from kernel.problems import Conflict, NotFound, Problem, Refused
from kernel.runtime import Storage
from kernel.unit_of_work import PostgresUnitOfWork, UnitOfWork, UnitOfWorkFactory
from services.payment import domain, projections, reconciliation, settlement
from services.payment.channels import ChannelNotification, Verified
from services.payment.domain import Month, Tiers
from services.payment.tariff import TariffBook
from services.payment.withholding_service import WithholdingOperations

log = get_logger(__name__)

Project = Callable[[UnitOfWork, Sequence[Envelope]], Awaitable[None]]

# A billing run and a change of tiers of the same account may meet (the account stream's
# expected version orders them); the loser decides again on the fresh account, a few times.
_ATTEMPTS = 5


async def project_in_postgres(uow: UnitOfWork, envelopes: Sequence[Envelope]) -> None:
    if not isinstance(uow, PostgresUnitOfWork):
        raise TypeError("the PostgreSQL read models are written in a PostgreSQL unit of work")
    await projections.apply(uow.conn, envelopes)


async def project_nothing(uow: UnitOfWork, envelopes: Sequence[Envelope]) -> None:
    """For a service layer on kernel.memory: no tables, the events are what the tests read."""


@dataclass(frozen=True)
class PaymentRules:
    """What an operator configures: the yearly tariffs and the due day of the following month."""

    tariffs: TariffBook
    due_day: int = 15


@dataclass(frozen=True)
class IssueReport:
    """What a billing run did: `accounts` visited, bills issued now and their total (integer fen)."""

    period: str
    accounts: int
    bills_issued: int
    amount_fen: int


def _no_account() -> NotFound:
    return NotFound("account_not_found", "未找到该参保人的缴费账户：参保登记审核通过后才会开立缴费账户。")


class PaymentService(WithholdingOperations):
    """`units`: where the unit of work comes from (default: PostgreSQL on the pool); a handler
    passes one on its consumer's connection."""

    def __init__(
        self,
        storage: Storage,
        rules: PaymentRules,
        units: UnitOfWorkFactory | None = None,
        project: Project = project_in_postgres,
    ) -> None:
        super().__init__(storage)
        self.rules = rules
        self._units = units
        self.project = project

    def units(self) -> UnitOfWork:
        if self._units is not None:
            return self._units()
        return PostgresUnitOfWork(self.store, pool=self.pool)

    # --- from enrollment.events -------------------------------------------------------------

    async def note_submission(
        self, submitted: EnrollmentSubmitted, cause: Envelope, units: UnitOfWorkFactory | None = None
    ) -> domain.SubmissionNoted | None:
        """Remember the tiers of (application, attempt); None when they are noted already."""
        stream = domain.submission_stream(submitted.application_id)
        for _ in range(_ATTEMPTS):
            try:
                async with (units or self.units)() as uow:
                    state = domain.replay_submissions(await uow.events.load(stream))
                    noted = domain.note_submission(state, submitted)
                    if noted is None:
                        return None
                    await uow.events.append(
                        stream,
                        state.version,
                        [noted],
                        correlation_id=cause.correlation_id,
                        causation_id=str(cause.event_id),
                    )
                return noted
            except ConcurrencyError:
                continue  # the same submission noted at the same moment by another delivery: look again
        raise Conflict("submission_busy", "该参保申请正在处理中，请稍后重试。")

    async def open_account(
        self, approved: ApplicationApproved, cause: Envelope, units: UnitOfWorkFactory | None = None
    ) -> ContributionAccountOpened | None:
        """Open the approved person's account with the approved attempt's tiers, once: None when
        the account is open already (a redelivery, a replay, or a second approval of the person).
        Raises `domain.SubmissionUnknown` if payment never saw the approved submission."""
        account_id = domain.account_id_for(approved.applicant_id)
        stream = domain.account_stream(account_id)
        try:
            async with (units or self.units)() as uow:
                if await uow.events.stream_version(stream) > 0:
                    log.info("account_already_open", account_id=str(account_id))
                    return None
                submissions = await uow.events.load(domain.submission_stream(approved.application_id))
                noted = domain.replay_submissions(submissions).by_attempt.get(approved.attempt)
                if noted is None:
                    raise domain.SubmissionUnknown(
                        f"application {approved.application_id} attempt {approved.attempt} was approved, "
                        "but its EnrollmentSubmitted never reached payment"
                    )
                opened = domain.open_account(noted, approved)
                # The account keeps the application's correlation id: one application reads as one trace.
                envelopes = await uow.events.append(
                    stream, 0, [opened], correlation_id=cause.correlation_id, causation_id=str(cause.event_id)
                )
                await self.project(uow, envelopes)
        except ConcurrencyError:  # opened at the same moment by another delivery
            log.info("account_already_open", account_id=str(account_id))
            return None
        log.info("account_opened", account_id=str(account_id), application_id=str(approved.application_id))
        return opened

    # --- the person's account ---------------------------------------------------------------

    async def account(self, insured_person_id: UUID) -> domain.Account:
        async with self.units() as uow:
            stream = domain.account_stream(domain.account_id_for(insured_person_id))
            account = domain.replay(await uow.events.load(stream))
        if account is None:
            raise _no_account()
        return account

    async def change_tiers(self, insured_person_id: UUID, tiers: Tiers, now: datetime | None = None) -> domain.Account:
        """New tiers from the first month not yet billed; the account as it is afterwards."""
        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    stream = domain.account_stream(domain.account_id_for(insured_person_id))
                    history = await uow.events.load(stream)
                    account = domain.replay(history)
                    if account is None:
                        raise _no_account()
                    changed = domain.change_tiers(account, tiers, now or utc_now())
                    if changed is None:
                        return account
                    envelopes = await uow.events.append(
                        stream,
                        account.version,
                        [changed],
                        correlation_id=account.correlation_id,
                        causation_id=str(account.opened_event_id),
                    )
                    await self.project(uow, envelopes)
                log.info("tiers_changed", account_id=str(account.account_id), effective_from=changed.effective_from)
                return domain.replay([*history, *envelopes]) or account
            except ConcurrencyError:
                continue  # a billing run moved the account on: decide again on the fresh one
        raise Conflict("account_busy", "缴费账户正在处理其他业务，请稍后再试。")

    # --- bills --------------------------------------------------------------------------------

    async def bill_account(self, account_id: UUID, last: Month, now: datetime | None = None) -> list[BillIssued]:
        """Issue the account's bills up to `last` that are not issued yet (none twice)."""
        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    stream = domain.account_stream(account_id)
                    account = domain.replay(await uow.events.load(stream))
                    if account is None:
                        raise NotFound("account_not_found", "未找到该缴费账户。")
                    billings = domain.bills_through(account, last, self.rules.tariffs, self.rules.due_day,
                                                    now or utc_now())  # fmt: skip
                    if not billings:
                        return []
                    appended: list[Envelope] = []
                    for billing in billings:
                        # The bill's own stream, new: a bill issued twice would fail here too.
                        appended += await uow.events.append(
                            domain.bill_stream(billing.bill.bill_id),
                            0,
                            [billing.bill],
                            correlation_id=account.correlation_id,
                            causation_id=str(account.opened_event_id),
                        )
                    appended += await uow.events.append(
                        stream,
                        account.version,
                        [b.billed for b in billings],
                        correlation_id=account.correlation_id,
                        causation_id=str(account.opened_event_id),
                    )
                    await self.project(uow, appended)
                log.info("account_billed", account_id=str(account_id), periods=[b.bill.period for b in billings])
                return [b.bill for b in billings]
            except ConcurrencyError:
                continue  # a change of tiers or another run came first: decide again
        raise Conflict("account_busy", "缴费账户正在处理其他业务，请稍后再试。")

    async def issue_bills(
        self,
        period: Month,
        now: datetime | None = None,
        page: int = 200,
        on_account: Callable[[UUID, list[BillIssued]], None] | None = None,
    ) -> IssueReport:
        """Bill every account opened in `period` or before, up to `period` (months an earlier run
        missed are caught up). Safe to run twice: what is billed is not billed again. Resumable:
        each account is billed in its own transaction, so a run that stopped half-way is simply
        run again. `tariff_missing` stops the run before the account that needs the missing year."""
        moment = now or utc_now()
        current = Month.at(moment)
        if period > current.next():
            raise Refused(
                "period_in_future",
                f"只能生成本月或下月的账单，不能生成{period}的账单。",
                period=str(period),
            )
        self.rules.tariffs.of_year(period.year)  # refuse at once when the month's year has no tariff
        after: UUID | None = None
        accounts = issued = amount = 0
        while batch := await projections.accounts_to_bill(self.pool, period, after, page):
            for account_id in batch:
                bills = await self.bill_account(account_id, period, moment)
                accounts += 1
                issued += len(bills)
                amount += sum(b.amount_fen for b in bills)
                if on_account is not None:
                    on_account(account_id, bills)
            after = batch[-1]
        log.info("bills_issued", period=str(period), accounts=accounts, bills=issued, amount_fen=amount)
        return IssueReport(str(period), accounts, issued, amount)

    # --- channel notifications (services/payment/README.md, "Settlement") --------------------------

    async def receive_notification(self, verified: Verified, now: datetime | None = None) -> tuple[Result, bool]:
        """Take one verified notification exactly once per `(channel, transaction_id)` (kernel.inbox):
        the first delivery decides and records; a repeat gets the first result back. Returns the
        result (`status` 200 or 422, `outcome`, and for a refusal `code` and `detail`) and whether
        this delivery was a repeat. A refusal is a result, not an exception, so the exception it
        records commits with the inbox row."""
        moment = now or utc_now()
        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    receipt = await uow.inbox.receive(
                        verified.channel, verified.transaction_id, lambda: self._take(uow, verified, moment)
                    )
                if not receipt.repeat:
                    log.info("notification_taken", channel=verified.channel, outcome=receipt.result["outcome"],
                             transaction_id=verified.transaction_id)  # fmt: skip
                return receipt.result, receipt.repeat
            except ConcurrencyError:
                continue  # another channel's notification settled the bill first: decide again (an overpayment)
        raise Conflict("bill_busy", "账单正在处理其他支付通知，请稍后重试。")

    async def _take(self, uow: UnitOfWork, verified: Verified, now: datetime) -> Result:
        if not isinstance(verified, ChannelNotification):
            failed = settlement.collection_failed(verified, now)
            envelopes = await uow.events.append(
                settlement.collection_stream(failed.failure_id), 0, [failed], correlation_id=str(failed.failure_id)
            )
            await self.project(uow, envelopes)
            # Our open request of that bill fails (the person is told, the next run asks again);
            # a failure naming no open request of ours stays the operators' record only.
            told = await self.collection_failed(uow, verified)
            return {"status": 200, "outcome": "collection_failed", "failure_id": str(failed.failure_id),
                    "request_failed": told}  # fmt: skip
        bill_id = settlement.bill_id_of(verified.out_trade_no)
        history = await uow.events.load(domain.bill_stream(bill_id)) if bill_id is not None else []
        bill = settlement.replay(history)
        decision = settlement.decide(bill, verified, now)
        if isinstance(decision, settlement.ReconciliationExceptionRecorded):
            envelopes = await uow.events.append(
                settlement.exception_stream(decision.exception_id), 0, [decision],
                correlation_id=str(decision.exception_id),
            )  # fmt: skip
            await self.project(uow, envelopes)
            return {
                "status": 422,
                "outcome": decision.code,
                "code": decision.code,
                "detail": settlement.EXCEPTION_DETAILS[decision.code],
                "exception_id": str(decision.exception_id),
            }
        assert bill is not None
        # The bill's stream, at the version read: a settlement of the same bill by another channel
        # at the same moment makes one of the two decide again (and find the bill paid).
        envelopes = await uow.events.append(
            domain.bill_stream(bill.issued.bill_id), bill.version, [decision],
            correlation_id=bill.correlation_id or str(bill.issued.bill_id),
            causation_id=str(bill.issued_event_id) if bill.issued_event_id else None,
        )  # fmt: skip
        await self.project(uow, envelopes)
        outcome = "settled" if isinstance(decision, PaymentSettled) else "overpayment"
        return {"status": 200, "outcome": outcome, "payment_id": str(decision.payment_id)}

    # --- a channel's daily statement (services/payment/README.md, "Reconciliation") -----------------

    async def reconcile(
        self,
        channel: str,
        day: date,
        statement: bytes,
        statement_file: str,
        now: datetime | None = None,
    ) -> reconciliation.ReconciliationRunRecorded:
        """Read the channel's statement (UTF-8 CSV), compare it with the payments taken on `channel`
        on `day` in Changzhou, and record the run (`ReconciliationRunRecorded` on its own stream, and
        `reconciliation_runs`) whatever it found: a clean run is evidence for an auditor too. A
        statement that cannot be read is refused (`invalid_statement`) and nothing is recorded."""
        if channel not in reconciliation.CHANNELS:
            raise Refused("unknown_channel", f"未知的支付渠道“{channel}”。", channels=list(reconciliation.CHANNELS))
        try:
            lines = reconciliation.parse_statement(statement.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise Refused("invalid_statement", "对账单须为UTF-8编码的CSV文件。") from exc
        except reconciliation.StatementRefused as exc:
            raise Refused(exc.code, exc.detail) from exc
        start, end = reconciliation.day_bounds(day)
        async with self.units() as uow:
            if not isinstance(uow, PostgresUnitOfWork):
                raise TypeError("reconciliation reads the payments read model: a PostgreSQL unit of work")
            # Read in the unit that records the run: the run states what the tables held when it ran.
            taken = await projections.taken_on(uow.conn, channel, start, end)
            found = reconciliation.compare(taken, lines)
            run = reconciliation.ReconciliationRunRecorded.model_validate(
                {
                    "run_id": uuid4(),
                    "channel": channel,
                    "statement_date": day,
                    "statement_file": statement_file,
                    "statement_sha256": hashlib.sha256(statement).hexdigest(),
                    "matched": found.matched,
                    "matched_fen": found.matched_fen,
                    "ours_count": found.ours_count,
                    "ours_fen": found.ours_fen,
                    "statement_count": found.statement_count,
                    "statement_fen": found.statement_fen,
                    "differences": list(found.differences),
                    "ran_at": now or utc_now(),
                }
            )
            envelopes = await uow.events.append(
                reconciliation.run_stream(run.run_id), 0, [run], correlation_id=str(run.run_id)
            )
            await self.project(uow, envelopes)
        log.info("reconciliation_run", channel=channel, day=day.isoformat(), differences=len(run.differences),
                 matched=run.matched)  # fmt: skip
        return run

    @staticmethod
    def refusal(result: Result) -> Problem | None:
        """The problem a stored result answers with, if it was a refusal."""
        if result["status"] < 300:
            return None
        return Problem(result["code"], result["detail"], result["status"])

    async def refunds(self, limit: int, offset: int) -> list[asyncpg.Record]:
        return await projections.refunds(self.pool, limit, offset)

    async def reconciliation_exceptions(self, limit: int, offset: int) -> list[asyncpg.Record]:
        return await projections.reconciliation_exceptions(self.pool, limit, offset)

    async def account_row(self, insured_person_id: UUID) -> asyncpg.Record:
        row = await projections.account_of(self.pool, insured_person_id)
        if row is None:
            raise _no_account()
        return row

    async def bills_of(self, insured_person_id: UUID) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
        """The person's account and bills (read models)."""
        return await self.account_row(insured_person_id), await projections.bills_of(self.pool, insured_person_id)

    async def payable_bills(self, insured_person_id: UUID) -> list[asyncpg.Record] | None:
        """The person's bills not yet paid, oldest month first, for someone paying for them
        (POST /v1/bills/lookup); None when the person has no contribution account."""
        if await projections.account_of(self.pool, insured_person_id) is None:
            return None
        return [row for row in await projections.bills_of(self.pool, insured_person_id) if row["paid_at"] is None]
