"""enrollment's service layer: load the application, ask the domain, then in ONE transaction
append its events, write the lookup rows and add the events to the status facts (so the
applicant reads their own writes before the projection consumer sees them on Kafka)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg

from contracts.events.base import Event, mask_phone
from contracts.events.enrollment import DocumentUploaded, EnrollmentSubmitted
from kernel.auth import Principal
from kernel.db import Connection
from kernel.eventstore import ConcurrencyError, EventStore
from kernel.problems import Conflict, Forbidden, NotFound, Problem
from services.enrollment import domain, form, projections
from services.enrollment.blobs import BlobNotFound, BlobStore
from services.enrollment.documents import check_document
from services.enrollment.metrics import APPLICATIONS_OPENED, REFUSALS, SUBMISSIONS
from services.enrollment.reference import Districts, Notice, region_name
from services.enrollment.rules import AgePolicy, Choices
from services.enrollment.status import StatusView, fold

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ATTEMPTS = 3  # optimistic concurrency: two uploads at once both succeed after a reload


def stream_id(application_id: UUID) -> str:
    return f"application-{application_id}"


@dataclass(frozen=True)
class EnrollmentConfig:
    notice: Notice
    agency_notice: Notice
    districts: Districts
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


class EnrollmentService:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, blobs: BlobStore, config: EnrollmentConfig) -> None:
        self.pool = pool
        self.store = store
        self.blobs = blobs
        self.config = config

    # --- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def _decide(
        self,
        application_id: UUID,
        principal: Principal,
        decide: Callable[[Connection, domain.Application], Awaitable[Sequence[Event]]],
        correlation_id: str,
    ) -> Sequence[Event]:
        """Load, authorize (owner only), decide and append; reload and retry on a concurrent append."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._transaction() as conn:
                    app = await load(conn, self.store, application_id)
                    owner_only(app, principal)
                    events = await decide(conn, app)
                    await append(conn, self.store, app, events, correlation_id)
                    return events
            except ConcurrencyError:
                if attempt == _ATTEMPTS:
                    raise Conflict("concurrent_update", "申报信息正在被更新，请稍后重试。") from None
        raise AssertionError("unreachable")

    # --- commands ---------------------------------------------------------------------------

    async def open(
        self, principal: Principal, notice_version: str | None, choices: Choices, correlation_id: str
    ) -> UUID:
        application_id, now = uuid4(), datetime.now(UTC)
        with counted_refusals("open"):
            async with self._transaction() as conn:
                person = await projections.person(conn, principal.user_id)
                c = self.config
                events = domain.open_application(
                    application_id, person, notice_version, c.notice.version, choices, c.districts, now
                )
                await _reserve(conn, application_id, principal.user_id, now)
                await append(conn, self.store, None, events, correlation_id)
        APPLICATIONS_OPENED.inc()
        return application_id

    async def correct(self, application_id: UUID, principal: Principal, changes: dict[str, object], cid: str) -> None:
        async def decide(_: Connection, app: domain.Application) -> list[Event]:
            assert app.choices is not None
            choices = Choices(**{**app.choices.__dict__, **changes})
            return [domain.correct(app, choices, self.config.districts, datetime.now(UTC))]

        with counted_refusals("correct"):
            await self._decide(application_id, principal, decide, cid)

    async def upload(
        self, application_id: UUID, principal: Principal, kind: str, data: bytes, cid: str
    ) -> DocumentUploaded:
        with counted_refusals("upload"):
            async with self.pool.acquire() as conn:
                owner_only(await load(conn, self.store, application_id), principal)  # before storing a byte
            content_type = check_document(data, self.config.document_max_bytes)
            ref = await self.blobs.put(data)

            async def decide(_: Connection, app: domain.Application) -> list[Event]:
                sha = ref.removeprefix("sha256/")
                return [domain.upload(app, kind, sha, content_type, len(data), ref, datetime.now(UTC))]

            (uploaded,) = await self._decide(application_id, principal, decide, cid)
        assert isinstance(uploaded, DocumentUploaded)
        return uploaded

    async def submit(self, application_id: UUID, principal: Principal, cid: str) -> None:
        async def decide(conn: Connection, app: domain.Application) -> list[Event]:
            person = await projections.person(conn, app.applicant_id)
            now = datetime.now(UTC)
            today = now.astimezone(SHANGHAI).date()
            c = self.config
            return [domain.submit(app, person, c.policy, c.districts, today, now)]

        with counted_refusals("submit"):
            await self._decide(application_id, principal, decide, cid)
        SUBMISSIONS.inc()

    async def accept_agency_notice(self, application_id: UUID, principal: Principal, version: str, cid: str) -> None:
        async def decide(_: Connection, app: domain.Application) -> list[Event]:
            current = self.config.agency_notice.version
            return list(domain.accept_agency_notice(app, version, current, datetime.now(UTC)))

        with counted_refusals("accept_agency_notice"):
            await self._decide(application_id, principal, decide, cid)

    # --- queries ----------------------------------------------------------------------------

    async def document(self, application_id: UUID, principal: Principal, kind: str) -> tuple[bytes, str]:
        app = await load(self.pool, self.store, application_id)
        owner_or_staff(app.applicant_id, principal)
        uploaded = app.documents.get(kind)
        if uploaded is None:
            raise NotFound("document_not_found", "该资料尚未上传。")
        try:
            return await self.blobs.get(uploaded.blob_ref), uploaded.content_type
        except BlobNotFound as exc:
            raise NotFound("document_not_found", "未找到该资料文件，请重新上传。") from exc

    async def status(self, application_id: UUID, principal: Principal) -> StatusView:
        view = fold(application_id, await projections.facts_of(self.pool, application_id))
        if view is None:
            raise NotFound("application_not_found", "未找到该参保登记申请。")
        owner_or_staff(view.applicant_id, principal)
        return view

    async def mine(self, principal: Principal) -> list[StatusView]:
        ids = await projections.applications_of(self.pool, principal.user_id)
        views = [fold(i, await projections.facts_of(self.pool, i)) for i in ids]
        return sorted((v for v in views if v is not None), key=lambda v: str(v.application_id))

    async def registration_form(self, application_id: UUID, principal: Principal) -> bytes:
        app = await load(self.pool, self.store, application_id)
        owner_or_staff(app.applicant_id, principal)
        submitted, _, _ = domain.check_printable(app)
        data = registration_data(app, submitted, self.config.districts)
        return await asyncio.to_thread(form.render, data, self.config.font_path)


def registration_data(app: domain.Application, s: EnrollmentSubmitted, districts: Districts) -> form.RegistrationForm:
    assert app.approved_at is not None and app.agency_notice_version is not None
    residence = districts.by_code.get(s.residence_district_code)
    return form.RegistrationForm(
        application_id=str(app.application_id),
        name=s.applicant_name,
        id_number_masked=s.id_number_masked,
        gender=s.gender,
        birth_date=s.birth_date,
        phone_masked=mask_phone(s.phone),
        household_kind=s.household_kind,
        household_region=region_name(s.household_region_code),
        residence_district=f"常州市{residence.name}" if residence else s.residence_district_code,
        pension_tier=s.pension_tier,
        medical_tier=s.medical_tier,
        agency=app.agency_name or districts.agency_name(app.agency_code or s.residence_district_code),
        approved_on=app.approved_at.astimezone(SHANGHAI).date(),
        agency_notice_version=app.agency_notice_version,
    )


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


async def append(
    conn: Connection,
    store: EventStore,
    app: domain.Application | None,
    events: Sequence[Event],
    correlation_id: str,
    causation_id: str | None = None,
) -> None:
    if not events:
        return
    application_id = app.application_id if app else events[0].application_id  # type: ignore[attr-defined]
    envelopes = await store.append(
        conn,
        stream_id(application_id),
        app.version if app else 0,
        events,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    await projections.record_facts(conn, envelopes)


async def _reserve(conn: Connection, application_id: UUID, applicant_id: UUID, now: datetime) -> None:
    """One open application per person; after approval the person is enrolled, not applying."""
    enrolled = await conn.fetchval(
        "SELECT application_id FROM applications WHERE applicant_id = $1 AND approved_at IS NOT NULL", applicant_id
    )
    if enrolled:
        raise Conflict("already_enrolled", "您的参保登记申请已审核通过，无需重复申请。", application_id=str(enrolled))
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO applications (application_id, applicant_id, created_at) VALUES ($1, $2, $3)",
                application_id,
                applicant_id,
                now,
            )
    except asyncpg.UniqueViolationError as exc:
        existing = await conn.fetchval(
            "SELECT application_id FROM applications WHERE applicant_id = $1 AND approved_at IS NULL", applicant_id
        )
        raise Conflict(
            "application_open",
            "您已有一份未完成的参保登记申请，请继续办理该申请。",
            application_id=str(existing),
        ) from exc
