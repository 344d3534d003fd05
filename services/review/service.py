"""review's service layer: opens cases from submissions and records decisions, each time
appending the events and updating the case queue in one transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from contracts.reference import DistrictDirectory
from kernel import audit
from kernel.auth import Principal
from kernel.clock import utc_now
from kernel.db import Connection
from kernel.eventstore import ConcurrencyError
from kernel.logging import get_logger
from kernel.problems import Conflict, Forbidden, NotFound, Refused
from kernel.runtime import ServiceLayer, Storage
from services.review import domain, projections
from services.review.reasons import ReasonCatalogue
from services.review.workdays import WorkingCalendar

log = get_logger(__name__)


def check_agency(case_agency: str, scope: str | None) -> None:
    """`scope`: the reviewer's agency, or None for a city-level reviewer or an operator (all)."""
    if scope is not None and case_agency != scope:
        raise Forbidden("not_your_agency", "该案件不属于您所在的受理机构，您只能查看和审核本机构的案件。")


@dataclass(frozen=True)
class ReviewRules:
    """What an operator configures: who reviews where, working days, the reason list."""

    districts: DistrictDirectory
    calendar: WorkingCalendar
    reasons: ReasonCatalogue
    due_working_days: int = 2


class ReviewService(ServiceLayer):
    """Cases are opened on the consumer's connection (`open_case(conn, …)`, inside the batch's
    transaction); everything a reviewer or operator does goes through the pool."""

    def __init__(self, storage: Storage, rules: ReviewRules) -> None:
        super().__init__(storage)
        self.rules = rules

    async def open_case(
        self,
        conn: Connection,
        submitted: EnrollmentSubmitted,
        applicant: domain.ApplicantData | None,
        cause: Envelope,
        now: datetime,
    ) -> ReviewCaseOpened | None:
        """Open the submission's case, or nothing if it has one already (None). `applicant`: the
        submission's sealed facts, opened; None when the person was erased (the case opens all the same)."""
        agency = self.rules.districts.agency_for(submitted.residence_district_code)
        opened = domain.open_case(submitted, agency, self.rules.calendar, self.rules.due_working_days, now)
        if not await projections.open_case(conn, opened, submitted, applicant):
            log.info("case_already_open", case_id=str(opened.case_id), application_id=str(opened.application_id))
            return None
        # The case keeps the application's correlation id, so one application's flow reads as one trace.
        await self.store.append(
            conn,
            domain.stream_id(opened.case_id),
            0,
            [opened],
            correlation_id=cause.correlation_id,
            causation_id=str(cause.event_id),
            now=now,
        )
        log.info("case_opened", case_id=str(opened.case_id), agency=agency.code, due_on=str(opened.due_on))
        return opened

    async def erase_applicant(self, conn: Connection, user_id: UUID, now: datetime) -> int:
        """`PersonErased`: the person's name, birth date and phone leave their cases; the cases,
        their events and decisions stay (docs/personal-data.md)."""
        blanked = await projections.erase_applicant(conn, user_id, now)
        log.info("applicant_erased", applicant_id=str(user_id), cases=blanked)
        return blanked

    async def case(self, case_id: UUID) -> domain.Case:
        case = domain.replay(await self.store.load(self.pool, domain.stream_id(case_id)))
        if case is None:
            raise NotFound("case_not_found", "未找到该审核案件。")
        return case

    async def decide(
        self,
        case_id: UUID,
        decision: domain.Decision,
        reasons: Sequence[domain.ReasonInput],
        reviewer_id: UUID,
        scope: str | None = None,
        client: str | None = None,
    ) -> ReviewDecided:
        """The decision is recorded in the audit trail (kernel.audit) in its own transaction:
        no decision without its record. `client`: the reviewer's address."""
        case = await self.case(case_id)
        # Before the domain: another agency's case is refused whatever its state.
        check_agency(case.opened.agency_code, scope)
        decided = domain.decide(case, decision, reasons, self.rules.reasons, reviewer_id, utc_now())
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                # Correlated with the application's flow; caused by the case's opening.
                await self.store.append(
                    conn,
                    domain.stream_id(case_id),
                    case.version,
                    [decided],
                    correlation_id=case.correlation_id,
                    causation_id=str(case.opened_event_id),
                    now=decided.decided_at,
                )
            except ConcurrencyError as exc:  # another reviewer decided in between
                raise Conflict("already_decided", "该申报已审核完毕，不能重复审核。") from exc
            await projections.record_decision(conn, decided)
            await audit.record(
                conn,
                actor_id=reviewer_id,
                actor_role="reviewer",
                action="case.decided",
                person_id=decided.applicant_id,
                detail={
                    "case_id": str(case_id),
                    "application_id": str(decided.application_id),
                    "attempt": decided.attempt,
                    "decision": decision,
                    "reasons": [r.code for r in decided.reasons],
                },
                client=client,
            )
        log.info("case_decided", case_id=str(case_id), decision=decision)
        return decided

    async def list_cases(
        self, query: projections.CaseQuery, limit: int, offset: int, scope: str | None = None
    ) -> list[asyncpg.Record]:
        """`query.agency_code`: the filter asked for; `scope`: the reviewer's own agency (None: all).
        A reviewer with an agency gets that agency's cases whether or not they ask for it."""
        if scope is not None:
            if query.agency_code is not None and query.agency_code != scope:
                raise Forbidden("not_your_agency", "您只能查看本受理机构的案件，不能查看其他受理机构的审核队列。")
            query = query.limited_to(scope)  # an agency missing from the reference file simply has no cases
        elif query.agency_code is not None and self.rules.districts.agency(query.agency_code) is None:
            raise Refused("unknown_agency", f"未知的受理机构代码“{query.agency_code}”。")
        return await projections.list_cases(self.pool, query, limit, offset)

    async def case_row(self, case_id: UUID, scope: str | None = None) -> asyncpg.Record:
        row = await projections.get_case(self.pool, case_id)
        if row is None:
            raise NotFound("case_not_found", "未找到该审核案件。")
        check_agency(row["agency_code"], scope)
        return row

    async def record_reads(self, principal: Principal, rows: Sequence[asyncpg.Record], client: str | None) -> None:
        """Case views show the applicant's name and birth date in clear: each case shown to a
        staff member is recorded in the audit trail (kernel.audit), one entry per person."""
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            for row in rows:
                detail = {"case_id": str(row["case_id"]), "application_id": str(row["application_id"])}
                await audit.record_access(conn, principal, "case.read", row["applicant_id"], detail, client)

    async def queue_counts(self, today: date) -> dict[str, tuple[int, int]]:
        return await projections.queue_counts(self.pool, today)
