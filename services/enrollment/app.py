"""enrollment's composition root: settings, runtime, subscriptions, service layer and routes."""

from fastapi import FastAPI

from contracts.topics import EVENT_TOPICS, IDENTITY_EVENTS, REVIEW_EVENTS
from kernel.db import migrations_from
from kernel.eventstore import EventStore
from kernel.runtime import ServiceRuntime, Subscription
from services.enrollment.blobs import BlobStore, LocalFolderBlobStore
from services.enrollment.handlers import IDENTITY_HANDLERS, STATUS_HANDLERS, review_handlers
from services.enrollment.reference import load_districts, load_notice
from services.enrollment.routes import router
from services.enrollment.rules import AgePolicy
from services.enrollment.service import EnrollmentConfig, EnrollmentService
from services.enrollment.settings import EnrollmentSettings


def config_from(settings: EnrollmentSettings) -> EnrollmentConfig:
    return EnrollmentConfig(
        notice=load_notice(settings.notice_file),
        agency_notice=load_notice(settings.agency_notice_file),
        districts=load_districts(settings.districts_file),
        policy=AgePolicy(settings.minimum_age, settings.retirement_age_mode),
        document_max_bytes=settings.document_max_bytes,
        font_path=settings.pdf_font_path,
    )


def build(settings: EnrollmentSettings | None = None, blobs: BlobStore | None = None) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or EnrollmentSettings()
    store = EventStore(producer=settings.service, schema=settings.db_schema)  # the same the runtime builds
    runtime = ServiceRuntime(
        settings,
        migrations=migrations_from("services.enrollment"),
        subscriptions=[
            Subscription("people", [IDENTITY_EVENTS], IDENTITY_HANDLERS),
            Subscription("review", [REVIEW_EVENTS], review_handlers(store)),
            Subscription("status", list(EVENT_TOPICS), dict(STATUS_HANDLERS)),
        ],
    )
    app = runtime.create_app(
        "flexenroll enrollment",
        "Flexible-employment enrolment applications (灵活就业参保登记): notice, tiers, documents, "
        "submission, status and the registration form.",
    )
    config = config_from(settings)
    blob_store = blobs or LocalFolderBlobStore(settings.blob_root)
    app.state.enrollment_config = config

    @runtime.on_started
    def _wire() -> None:
        app.state.enrollment = EnrollmentService(runtime.pool, runtime.store, blob_store, config)

    app.include_router(router)
    return app, runtime
