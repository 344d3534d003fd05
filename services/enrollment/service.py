"""enrollment's service layer: load the application, ask the domain, then in ONE transaction
append its events, write the lookup rows and add the events to the status facts (so the
applicant reads their own writes at once; the `status` subscription does not read
enrollment.events).

Every event of an application carries the correlation id of its first one (NoticeAccepted),
whatever request or review fact caused it (docs/downstream.md)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg

from contracts.envelope import Envelope
from contracts.events.base import Event, Sealed, mask_phone
from contracts.events.enrollment import ApplicationApproved, DocumentUploaded, EnrollmentSubmitted, SubmittedPersonal
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from contracts.reference import DistrictDirectory
from kernel import audit, personal
from kernel.auth import Principal
from kernel.clock import local_date, utc_now
from kernel.db import Connection
from kernel.eventstore import ConcurrencyError, EventStore
from kernel.logging import get_logger
from kernel.personal import PersonKeys
from kernel.problems import Conflict, Forbidden, NotFound, Problem
from kernel.runtime import ServiceLayer, Storage
from services.enrollment import domain, form, projections
from services.enrollment.blobs import BlobNotFound, BlobStore
from services.enrollment.documents import clean_document
from services.enrollment.domain import stream_id
from services.enrollment.metrics import APPLICATIONS_OPENED, REFUSALS, SUBMISSIONS
from services.enrollment.reference import Notice, region_name
from services.enrollment.rules import AgePolicy, Choices
from services.enrollment.status import StatusView, fold

log = get_logger(__name__)
_ATTEMPTS = 3  # optimistic concurrency: two uploads at once both succeed after a reload
Clock = Callable[[], datetime]
T = TypeVar("T")


@dataclass(frozen=True)
class EnrollmentConfig:
    notice: Notice
    agency_notice: Notice
    districts: DistrictDirectory
    policy: AgePolicy
    document_max_bytes: int
    font_path: Path


@contextlib.contextmanager
def counted_refusals(action: str) -> Iterator[None]:
    try:
        yield
    except Problem as problem:
        REFUSALS.labels(action, problem.code).inc()
        raise


class EnrollmentService(ServiceLayer):
    """`keys`: the persons' data keys, from identity (docs/personal-data.md): the submission is
    sealed with the applicant's, and the registration form opened with it at print time."""

    def __init__(
        self, storage: Storage, blobs: BlobStore, config: EnrollmentConfig, keys: PersonKeys, clock: Clock = utc_now
    ) -> None:
        super().__init__(storage)
        self.blobs = blobs
        self.config = config
        self.keys = keys
        self.clock = clock  # decisions take `now`; tests may set another clock

    # --- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def _sealer(self, user_id: UUID) -> domain.Sealer:
        """Seals with the person's key; without one (erased) sealing refuses, after the domain's
        own checks, so that an already submitted application still says so first."""
        key = await _personal(self.keys.key_of(user_id))

        def seal(key_id: UUID, fields: Mapping[str, Any]) -> Sealed:
            assert key_id == user_id, "the domain seals for the applicant whose key was fetched"
            if key is None:
                raise Conflict("personal_data_erased", "您的个人信息已按本人申请删除，无法提交申报。")
            return personal.seal(key, key_id, fields)

        return seal

    async def _decide(
        self,
        application_id: UUID,
        principal: Principal,
        decide: Callable[[Connection, domain.Application], Awaitable[Sequence[Event]]],
    ) -> Sequence[Event]:
        """Load, authorize (owner only), decide and append; reload and retry on a concurrent append."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._transaction() as conn:
                    app = await load(conn, self.store, application_id)
                    owner_only(app, principal)
                    events = await decide(conn, app)
                    await append(conn, self.store, app, events)
                    return events
            except ConcurrencyError:
                if attempt == _ATTEMPTS:
                    raise Conflict("concurrent_update", "申报信息正在被更新，请稍后重试。") from None
        raise AssertionError("unreachable")

    # --- commands ---------------------------------------------------------------------------

    async def open(
        self, principal: Principal, notice_version: str | None, choices: Choices, correlation_id: str
    ) -> UUID:
        """The request's correlation id becomes the application's, for all its events."""
        application_id, now = uuid4(), self.clock()
        with counted_refusals("open"):
            async with self._transaction() as conn:
                person = await projections.person(conn, principal.user_id)
                c = self.config
                events = domain.open_application(
                    application_id,
                    person,
                    notice_version,
                    c.notice.version,
                    choices,
                    c.districts,
                    c.policy,
                    local_date(now),
                    now,
                )
                await _reserve(conn, application_id, principal.user_id, now)
                await append(conn, self.store, None, events, correlation_id)
        APPLICATIONS_OPENED.inc()
        return application_id

    async def correct(self, application_id: UUID, principal: Principal, changes: dict[str, object]) -> None:
        async def decide(_: Connection, app: domain.Application) -> list[Event]:
            assert app.choices is not None
            choices = Choices(**{**app.choices.__dict__, **changes})
            return [domain.correct(app, choices, self.config.districts, self.clock())]

        with counted_refusals("correct"):
            await self._decide(application_id, principal, decide)

    async def check_upload(self, application_id: UUID, principal: Principal) -> None:
        """Whether `principal` may upload to the application now (its owner, while editable):
        asked before the upload's body is read, so a stranger's or a late upload costs nothing."""
        with counted_refusals("upload"):
            app = await load(self.pool, self.store, application_id)
            owner_only(app, principal)
            domain.check_uploadable(app)

    async def upload(self, application_id: UUID, principal: Principal, kind: str, data: bytes) -> DocumentUploaded:
        """Stores the document as cleaned (documents.clean_document: images encoded again without
        metadata, PDFs with active content or embedded files refused): the event's sha256 and size
        are those of the stored file."""
        with counted_refusals("upload"):
            await self.check_upload(application_id, principal)  # before storing a byte
            clean = await asyncio.to_thread(clean_document, data, self.config.document_max_bytes)
            ref = await self.blobs.put(clean.data)

            async def decide(_: Connection, app: domain.Application) -> list[Event]:
                sha = ref.removeprefix("sha256/")
                return [domain.upload(app, kind, sha, clean.content_type, len(clean.data), ref, self.clock())]

            (uploaded,) = await self._decide(application_id, principal, decide)
        assert isinstance(uploaded, DocumentUploaded)
        return uploaded

    async def submit(self, application_id: UUID, principal: Principal) -> None:
        async def decide(conn: Connection, app: domain.Application) -> list[Event]:
            person = await projections.person(conn, app.applicant_id)
            seal = await self._sealer(app.applicant_id)
            now = self.clock()
            c = self.config
            return [domain.submit(app, person, c.policy, c.districts, local_date(now), now, seal)]

        with counted_refusals("submit"):
            await self._decide(application_id, principal, decide)
        SUBMISSIONS.inc()

    async def accept_agency_notice(self, application_id: UUID, principal: Principal, version: str) -> None:
        async def decide(_: Connection, app: domain.Application) -> list[Event]:
            current = self.config.agency_notice.version
            return list(domain.accept_agency_notice(app, version, current, self.clock()))

        with counted_refusals("accept_agency_notice"):
            await self._decide(application_id, principal, decide)

    async def learn_from_review(self, conn: Connection, envelope: Envelope, fact: Event) -> None:
        """A review fact becomes the application's own event (ApplicationUnderReview, Approved or
        Rejected), caused by the fact, on the consumer's connection; a stale one is ignored."""
        assert isinstance(fact, ReviewCaseOpened | ReviewDecided)
        app = domain.replay(await self.store.load(conn, stream_id(fact.application_id)))
        if app is None:  # not one of ours (e.g. another environment's history on the topic)
            log.info("review_fact_for_unknown_application", application_id=str(fact.application_id))
            return
        outcome = (
            domain.on_case_opened(app, fact) if isinstance(fact, ReviewCaseOpened) else domain.on_decided(app, fact)
        )
        if outcome is None:
            log.info("review_fact_ignored", attempt=fact.attempt, current_attempt=app.attempt, status=app.status)
            return
        await append(conn, self.store, app, [outcome], causation_id=str(envelope.event_id))
        if isinstance(outcome, ApplicationApproved):  # closes the person's open application
            await projections.close_application(conn, app.application_id, outcome.decided_at)

    # --- queries ----------------------------------------------------------------------------

    async def document(
        self, application_id: UUID, principal: Principal, kind: str, client: str | None = None
    ) -> tuple[bytes, str]:
        """A staff member's read is recorded in the audit trail before the file is handed out."""
        app = await load(self.pool, self.store, application_id)
        owner_or_staff_in_scope(app, principal, self.config.districts)
        uploaded = app.documents.get(kind)
        if uploaded is None:
            raise NotFound("document_not_found", "该资料尚未上传。")
        try:
            data = await self.blobs.get(uploaded.blob_ref)
        except BlobNotFound as exc:
            raise NotFound("document_not_found", "未找到该资料文件，请重新上传。") from exc
        detail = {"application_id": str(application_id), "kind": kind, "sha256": uploaded.sha256}
        await self._audit(app, principal, "document.read", detail, client)
        return data, uploaded.content_type

    async def _audit(
        self, app: domain.Application, principal: Principal, action: str, detail: dict[str, Any], client: str | None
    ) -> None:
        """Staff reads of a person's file (kernel.audit); the person's own reads are not recorded."""
        if principal.user_id == app.applicant_id or not principal.is_staff:
            return
        async with self.pool.acquire() as conn:
            await audit.record_access(conn, principal, action, app.applicant_id, detail, client)

    async def status(self, application_id: UUID, principal: Principal) -> StatusView:
        view = fold(application_id, await projections.facts_of(self.pool, application_id))
        if view is None:
            raise NotFound("application_not_found", "未找到该参保登记申请。")
        # Judged on the view itself: a status view rebuilt from the topics has no event store behind it.
        view_in_scope(view, principal, self.config.districts)
        return view

    async def mine(self, principal: Principal) -> list[StatusView]:
        ids = await projections.applications_of(self.pool, principal.user_id)
        views = [fold(i, await projections.facts_of(self.pool, i)) for i in ids]
        return sorted((v for v in views if v is not None), key=lambda v: str(v.application_id))

    async def registration_form(self, application_id: UUID, principal: Principal, client: str | None = None) -> bytes:
        """Holds the applicant's name, birth date and phone in clear: a staff print is recorded."""
        app = await load(self.pool, self.store, application_id)
        owner_or_staff_in_scope(app, principal, self.config.districts)
        submitted, _, _ = domain.check_printable(app)
        opened = await _personal(self.keys.open(submitted.personal, owner=app.applicant_id))  # now, never stored
        if opened is None:
            raise Problem(
                "personal_data_erased",
                "申请人的个人信息已按本人申请删除，无法再打印《常州市劳动事务代理申请登记表》。",
                410,
            )
        data = registration_data(app, submitted, opened, self.config.districts)
        pdf = await asyncio.to_thread(form.render, data, self.config.font_path)
        await self._audit(app, principal, "registration_form.read", {"application_id": str(application_id)}, client)
        return pdf


async def _personal(call: Awaitable[T]) -> T:
    """A call to identity for a key: unreachable is a 503 to the person, not a 500."""
    try:
        return await call
    except OSError as exc:
        raise Problem("personal_data_unavailable", "暂时无法读取个人信息，请稍后再试。", 503) from exc


def registration_data(
    app: domain.Application, s: EnrollmentSubmitted, opened: Mapping[str, Any], districts: DistrictDirectory
) -> form.RegistrationForm:
    """`opened`: the submission's sealed name, birth date and phone, opened with the applicant's key."""
    assert app.approved_at is not None and app.agency_notice_version is not None
    residence = districts.district(s.residence_district_code)
    fields = SubmittedPersonal.model_validate(opened)
    return form.RegistrationForm(
        application_id=str(app.application_id),
        name=fields.name,
        id_number_masked=s.id_number_masked,
        gender=s.gender,
        birth_date=fields.birth_date,
        phone_masked=mask_phone(fields.phone),
        household_kind=s.household_kind,
        household_region=region_name(s.household_region_code),
        residence_district=f"常州市{residence.name}" if residence else s.residence_district_code,
        pension_tier=s.pension_tier,
        medical_tier=s.medical_tier,
        agency=app.agency_name or _agency_name(app.agency_code, s.residence_district_code, districts),
        approved_on=local_date(app.approved_at),
        agency_notice_version=app.agency_notice_version,
    )


def _agency_name(agency_code: str | None, residence: str, districts: DistrictDirectory) -> str:
    """The agency review named by code (older cases carry no name), else the residence's."""
    agency = districts.agency(agency_code) if agency_code else None
    return (agency or districts.agency_for(residence)).name


# --- shared by routes and handlers --------------------------------------------------------------


async def load(conn: Connection | asyncpg.Pool, store: EventStore, application_id: UUID) -> domain.Application:
    app = domain.replay(await store.load(conn, stream_id(application_id)))
    if app is None:
        raise NotFound("application_not_found", "未找到该参保登记申请。")
    return app


def owner_only(app: domain.Application, principal: Principal) -> None:
    if app.applicant_id != principal.user_id:
        raise Forbidden("not_your_application", "只能办理本人的参保登记申请。")


def owner_or_staff(applicant_id: UUID | None, principal: Principal) -> None:
    if applicant_id != principal.user_id and not principal.is_staff:
        raise Forbidden("not_your_application", "只能查看本人的参保登记申请。")


def owner_or_staff_in_scope(app: domain.Application, principal: Principal, districts: DistrictDirectory) -> None:
    """Who may read an application (status, documents, registration form), issue 9 "Scope":
    - its owner, always;
    - staff only once it was submitted: a draft never submitted is not there for them (404
      `application_not_found`, as for an application that does not exist: that a person is
      preparing one is nobody's business yet);
    - a reviewer bound to an accepting agency (the token's scope) only when the application's
      agency is theirs (403 `not_your_agency`, as review answers for the case), the agency being
      the one review routes the submission to (domain.agency_code_of); operators and city-level
      reviewers (no scope) every submitted application."""
    if app.applicant_id == principal.user_id:
        return
    owner_or_staff(app.applicant_id, principal)
    staff_in_scope(domain.agency_code_of(app, districts), principal)


def view_in_scope(view: StatusView, principal: Principal, districts: DistrictDirectory) -> None:
    """The same rule on the status view (built from the topics): it holds the agency review named,
    else the residence district of the submission; a draft has no agency yet."""
    if view.applicant_id == principal.user_id:
        return
    owner_or_staff(view.applicant_id, principal)
    agency = view.agency_code
    if agency is None and view.status != "draft" and view.residence_district_code is not None:
        agency = districts.agency_for(view.residence_district_code).code
    staff_in_scope(agency if view.status != "draft" else None, principal)


def staff_in_scope(agency: str | None, principal: Principal) -> None:
    """A member of staff before an application's agency (None: never submitted)."""
    if agency is None:
        raise NotFound("application_not_found", "未找到该参保登记申请。")
    if principal.role == "reviewer" and principal.scope is not None and principal.scope != agency:
        raise Forbidden("not_your_agency", "该申请不属于您所在的受理机构，您只能查看本机构受理的申请。")


async def append(
    conn: Connection,
    store: EventStore,
    app: domain.Application | None,
    events: Sequence[Event],
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> None:
    """Append to the application's stream with its correlation id (`correlation_id` only for
    the first events, when there is no application yet) and record them as status facts."""
    if not events:
        return
    if app is None:
        assert correlation_id is not None, "the opening request's correlation id starts the application's"
        application_id, version, correlation = events[0].application_id, 0, correlation_id  # type: ignore[attr-defined]
    else:
        application_id, version, correlation = app.application_id, app.version, app.correlation_id
    envelopes = await store.append(
        conn, stream_id(application_id), version, events, correlation_id=correlation, causation_id=causation_id
    )
    await projections.record_facts(conn, envelopes)


async def _reserve(conn: Connection, application_id: UUID, applicant_id: UUID, now: datetime) -> None:
    """One open application per person; after approval the person is enrolled, not applying."""
    enrolled = await projections.enrolled_application(conn, applicant_id)
    if enrolled:
        raise Conflict("already_enrolled", "您的参保登记申请已审核通过，无需重复申请。", application_id=str(enrolled))
    existing = await projections.reserve_application(conn, application_id, applicant_id, now)
    if existing is not None:
        raise Conflict(
            "application_open",
            "您已有一份未完成的参保登记申请，请继续办理该申请。",
            application_id=str(existing),
        )
