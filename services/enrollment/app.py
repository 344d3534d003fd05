"""enrollment's composition root: settings, runtime, subscriptions, service layer and routes."""

from fastapi import FastAPI

from contracts.http import DOCUMENT_PATH
from contracts.reference import load_districts
from kernel.db import migrations_from
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime
from kernel.web import declare_body_limit
from services.enrollment.blobs import BlobStore, LocalFolderBlobStore
from services.enrollment.documents import too_large
from services.enrollment.handlers import EnrollmentHandlers
from services.enrollment.reference import load_notice
from services.enrollment.routes import _MULTIPART_SLACK, router
from services.enrollment.rules import AgePolicy
from services.enrollment.service import EnrollmentConfig, EnrollmentService
from services.enrollment.settings import EnrollmentSettings
from services.enrollment.stats_routes import router as stats_router
from services.enrollment.verification_check import VerificationCheck


def config_from(settings: EnrollmentSettings) -> EnrollmentConfig:
    return EnrollmentConfig(
        notice=load_notice(settings.enrollment_notice_file),
        agency_notice=load_notice(settings.enrollment_agency_notice_file),
        districts=load_districts(settings.districts_file),
        policy=AgePolicy(settings.enrollment_minimum_age, settings.enrollment_retirement_age_mode),
        document_max_bytes=settings.enrollment_document_max_bytes,
        font_path=settings.enrollment_pdf_font,
    )


def build(
    settings: EnrollmentSettings | None = None,
    blobs: BlobStore | None = None,
    keys: PersonKeys | None = None,
    verification_check: VerificationCheck | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    """`keys`: how personal data is sealed and opened (default: identity at IDENTITY_URL with
    PERSONAL_DATA_TOKEN); `verification_check`: how identity is asked whether a caller not yet known
    here as verified is (default: identity at IDENTITY_URL, with the caller's token). A given client
    belongs to the caller."""
    settings = settings or EnrollmentSettings()
    config = config_from(settings)
    runtime = ServiceRuntime(settings, migrations=migrations_from("services.enrollment"))
    own_keys = keys is None  # a given client belongs to the caller
    keys = keys or PersonKeys(settings)  # IDENTITY_URL, with this service's PERSONAL_DATA_TOKEN
    service = EnrollmentService(runtime, blobs or LocalFolderBlobStore(settings.enrollment_blob_root), config, keys)
    if own_keys:

        @runtime.on_stopped
        async def close_keys() -> None:
            await service.keys.aclose()
            service.keys = PersonKeys(settings)  # a runtime started again gets an open client

    runtime.subscriptions = EnrollmentHandlers(service).subscriptions()
    app = runtime.create_app(
        "flexenroll enrollment",
        "Flexible-employment enrolment applications (灵活就业参保登记): notice, tiers, documents, "
        "submission, status and the registration form.",
    )
    app.state.enrollment_config = config
    app.state.enrollment = service
    app.state.verification_check = verification_check or VerificationCheck(settings.identity_url)
    if verification_check is None:

        @runtime.on_stopped
        async def close_check() -> None:
            await app.state.verification_check.aclose()
            app.state.verification_check = VerificationCheck(settings.identity_url)

    app.include_router(router)
    app.include_router(stats_router)  # the operators' dashboard (issue 12)
    # A document upload is a multipart body up to the document's size (issue 9, "Bounded requests").
    max_bytes = settings.enrollment_document_max_bytes
    declare_body_limit(app, DOCUMENT_PATH, max_bytes + _MULTIPART_SLACK, refusal=too_large(max_bytes))
    return app, runtime
