"""review's composition root: settings, rules from config files, runtime, consumer, routes."""

from fastapi import FastAPI

from contracts.topics import ENROLLMENT_EVENTS
from kernel.db import migrations_from
from kernel.runtime import ServiceRuntime, Subscription
from services.review.agencies import AgencyDirectory
from services.review.handlers import enrollment_handlers
from services.review.metrics import queue_gauges_job
from services.review.reasons import ReasonCatalogue
from services.review.routes import router
from services.review.service import CaseIntake, ReviewRules, ReviewService
from services.review.settings import ReviewSettings
from services.review.workdays import WorkingCalendar


def load_rules(settings: ReviewSettings) -> ReviewRules:
    """Read the operator's files at start: a broken file stops the service instead of misrouting."""
    return ReviewRules(
        agencies=AgencyDirectory.from_file(settings.review_agencies_file),
        calendar=WorkingCalendar.from_file(settings.review_calendar_file),
        reasons=ReasonCatalogue.from_file(settings.review_reason_codes_file),
        due_working_days=settings.review_due_working_days,
    )


def build(settings: ReviewSettings | None = None) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or ReviewSettings()
    rules = load_rules(settings)
    services: dict[str, ReviewService] = {}
    runtime = ServiceRuntime(
        settings,
        migrations=migrations_from("services.review"),
        background=[queue_gauges_job(lambda: services["review"], settings.review_metrics_refresh_seconds)],
    )
    # The intake needs only the store, which exists before start: the consumer can be declared now.
    runtime.subscriptions = [
        Subscription("cases", [ENROLLMENT_EVENTS], enrollment_handlers(CaseIntake(runtime.store, rules))),
    ]
    app = runtime.create_app(
        "flexenroll review",
        "The accepting agencies' review of flexible-employment enrolment submissions (受理机构审核, 常州灵活就业参保).",
    )
    app.state.rules = rules
    app.state.enrollment_url = settings.enrollment_public_url

    @runtime.on_started
    def _wire() -> None:
        services["review"] = app.state.review = ReviewService(runtime.pool, runtime.store, rules)

    app.include_router(router)
    return app, runtime
