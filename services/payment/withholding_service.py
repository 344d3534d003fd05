"""The service layer of bank withholding and overdue bills (services/payment/README.md, "Bank
withholding", "Overdue bills"), a part of `PaymentService` kept in its own module: agreements
confirmed by the banks, the monthly withholding run, the outcome of a collection request, and the
bills recorded overdue. Each step is one unit of work: events appended, read models written.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payment import BillOverdue, WithholdingCollectionFailed
from kernel.clock import local_date, utc_now
from kernel.db import Connection
from kernel.effects import Claim, EffectTable, Next
from kernel.eventstore import ConcurrencyError
from kernel.inbox import Result
from kernel.logging import get_logger
from kernel.problems import Conflict
from kernel.runtime import ServiceLayer
from kernel.unit_of_work import PostgresUnitOfWork, UnitOfWork
from services.payment import domain, settlement, withholding, withholding_views
from services.payment.bank import CollectionOrder, order_of
from services.payment.channels import CollectionFailed

log = get_logger(__name__)

_ATTEMPTS = 5

# kernel.effects' table of the requests to send to the banks (migration 004).
COLLECTIONS: EffectTable[CollectionOrder] = EffectTable("collection_requests", "collection_request_id", order_of)


@dataclass(frozen=True)
class WithholdReport:
    """What one withholding run did: bills visited, requests recorded now (and their total in
    fen), bills left alone because a request of theirs is still open or they were paid."""

    run_id: UUID
    bills: int
    requested: int
    amount_fen: int
    left_alone: int


class WithholdingOperations(ServiceLayer):
    """The base of PaymentService, which provides where its units of work come from and how the
    read models are written (service.py)."""

    project: Callable[[UnitOfWork, Sequence[Envelope]], Awaitable[None]]

    def units(self) -> UnitOfWork:
        raise NotImplementedError

    # --- agreements (the bank's confirmation, POST /v1/channels/bank_withholding/agreements) ---

    async def confirm_agreement(
        self, person: UUID, confirmation: withholding.AgreementConfirmation, now: datetime | None = None
    ) -> tuple[Result, bool]:
        """Exactly once per (bank, agreement number, status) (kernel.inbox): a repeat answers the
        first result. An active agreement for the same person and card is reused, not signed again."""
        moment = now or utc_now()
        key = f"{confirmation.bank_code}:{confirmation.agreement_no}:{confirmation.status}"
        agreement_id = withholding.agreement_id_for(person, confirmation.bank_code, confirmation.card_ref)
        stream = withholding.agreement_stream(agreement_id)

        async def take(uow: UnitOfWork) -> Result:
            state = withholding.replay_agreement(await uow.events.load(stream))
            outcome, event = withholding.confirm_agreement(state, person, confirmation, moment)
            if event is not None:
                envelopes = await uow.events.append(
                    stream, state.version if state else 0, [event], correlation_id=str(agreement_id)
                )
                await self.project(uow, envelopes)
            return {"status": 200, "outcome": outcome, "agreement_id": str(agreement_id)}

        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    receipt = await uow.inbox.receive("bank_withholding_agreement", key, partial(take, uow))
                if not receipt.repeat:
                    log.info("withholding_agreement", outcome=receipt.result["outcome"], agreement_id=str(agreement_id))
                return receipt.result, receipt.repeat
            except ConcurrencyError:
                continue  # the same card confirmed twice at once under two numbers: decide again
        raise Conflict("agreement_busy", "扣缴协议正在处理中，请稍后重试。")

    async def agreements_of(self, insured_person_id: UUID) -> list[asyncpg.Record]:
        return await withholding_views.agreements_of(self.pool, insured_person_id)

    # --- the withholding run ------------------------------------------------------------------

    async def withhold(
        self,
        run_id: UUID,
        now: datetime | None = None,
        page: int = 200,
        on_bill: Callable[[UUID, withholding.CollectionRequested | None], None] | None = None,
    ) -> WithholdReport:
        """Record one collection request for every unpaid bill whose person has an active agreement
        and no request open (kernel.effects then sends each once). Safe to run twice: an open
        request is not asked again. Resumable: each bill is its own transaction."""
        moment = now or utc_now()
        after: UUID | None = None
        bills = requested = amount = 0
        while batch := await withholding_views.bills_to_collect(self.pool, after, page):
            for bill_id, agreement_id in batch:
                asked = await self.request_collection(bill_id, agreement_id, run_id, moment)
                bills += 1
                if asked is not None:
                    requested += 1
                    amount += asked.amount_fen
                if on_bill is not None:
                    on_bill(bill_id, asked)
            after = batch[-1][0]
        log.info("withholding_run", run_id=str(run_id), bills=bills, requested=requested, amount_fen=amount)
        return WithholdReport(run_id, bills, requested, amount, bills - requested)

    async def request_collection(
        self, bill_id: UUID, agreement_id: UUID, run_id: UUID, now: datetime
    ) -> withholding.CollectionRequested | None:
        """The bill's next collection under the agreement, or None (paid, or one is open)."""
        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    bill = settlement.replay(await uow.events.load(domain.bill_stream(bill_id)))
                    agreement = withholding.replay_agreement(
                        await uow.events.load(withholding.agreement_stream(agreement_id))
                    )
                    if bill is None or agreement is None:
                        return None
                    issued = bill.issued
                    asked = withholding.request_collection(
                        issued.bill_id, issued.account_id, issued.insured_person_id, issued.period, issued.amount_fen,
                        bill.collections, bill.settled is not None, agreement, run_id, now,
                    )  # fmt: skip
                    if asked is None:
                        return None
                    await self._append_to_bill(uow, bill, [asked])
                return asked
            except ConcurrencyError:
                continue  # a settlement or another run moved the bill on: decide again
        raise Conflict("bill_busy", "账单正在处理其他业务，请稍后重试。")

    async def _append_to_bill(self, uow: UnitOfWork, bill: settlement.Bill, events: Sequence[Any]) -> None:
        envelopes = await uow.events.append(
            domain.bill_stream(bill.issued.bill_id), bill.version, list(events),
            correlation_id=bill.correlation_id or str(bill.issued.bill_id),
            causation_id=str(bill.issued_event_id) if bill.issued_event_id else None,
        )  # fmt: skip
        await self.project(uow, envelopes)

    # --- outcomes of a request ----------------------------------------------------------------

    async def record_collection_final(
        self, conn: Connection, claim: Claim[CollectionOrder], outcome: Next, provider: str, now: datetime
    ) -> None:
        """kernel.effects' `OnFinal`: a request the bank refused for good (or never took after every
        attempt) is a failed collection, told to the person; an accepted one waits for the bank's
        result notification."""
        if outcome.state != "failed":
            return
        reason = withholding.failure_reason(outcome.error_code)
        async with PostgresUnitOfWork(self.store, conn=conn) as uow:
            await self._fail_open_request(uow, claim.effect.bill_id, claim.effect.collection_request_id, reason, now)

    async def collection_failed(self, uow: UnitOfWork, failed: CollectionFailed) -> bool:
        """The bank's notification that a request was not collected: the bill's open request fails
        (and the person is told); False when it names no open request of ours (recorded for
        operators only, by the caller)."""
        bill_id = settlement.bill_id_of(failed.out_trade_no)
        try:
            request_id = UUID(failed.collection_request_id)
        except ValueError:
            return False
        if bill_id is None:
            return False
        return await self._fail_open_request(uow, bill_id, request_id, failed.reason, failed.failed_at)

    async def _fail_open_request(
        self, uow: UnitOfWork, bill_id: UUID, request_id: UUID, reason: str, failed_at: datetime
    ) -> bool:
        bill = settlement.replay(await uow.events.load(domain.bill_stream(bill_id)))
        if bill is None:
            return False
        open_request = bill.collections.open_request
        if open_request is None or open_request.collection_request_id != request_id:
            return False
        failed: WithholdingCollectionFailed = withholding.collection_failed(
            open_request, withholding.failure_reason(reason), failed_at
        )
        await self._append_to_bill(uow, bill, [failed])
        log.info("collection_failed", bill_id=str(bill_id), collection_request_id=str(request_id), reason=failed.reason)
        return True

    # --- overdue bills ------------------------------------------------------------------------

    async def mark_overdue(self, today: date | None = None, now: datetime | None = None, page: int = 200) -> int:
        """Record `BillOverdue` once for every unpaid bill whose due day has passed in Changzhou;
        returns how many were recorded now. Safe to run twice and at once (the bill stream's version)."""
        moment = now or utc_now()
        day = today or local_date(moment)
        marked = 0
        after: UUID | None = None
        while batch := await withholding_views.bills_past_due(self.pool, day, after, page):
            for bill_id in batch:
                marked += await self._mark_overdue(bill_id, day, moment)
            after = batch[-1]
        if marked:
            log.info("bills_overdue", count=marked, today=day.isoformat())
        return marked

    async def _mark_overdue(self, bill_id: UUID, today: date, now: datetime) -> int:
        for _ in range(_ATTEMPTS):
            try:
                async with self.units() as uow:
                    bill = settlement.replay(await uow.events.load(domain.bill_stream(bill_id)))
                    overdue: BillOverdue | None = settlement.overdue(bill, today, now) if bill else None
                    if bill is None or overdue is None:
                        return 0
                    await self._append_to_bill(uow, bill, [overdue])
                return 1
            except ConcurrencyError:
                continue  # paid at this moment, or marked by another run: look again
        raise Conflict("bill_busy", "账单正在处理其他业务，请稍后重试。")
