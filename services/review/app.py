"""review's composition root: settings, rules from config files, runtime, consumer, routes."""

from fastapi import FastAPI

from contracts.reference import load_districts
from kernel.db import migrations_from
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime
from services.review.handlers import ReviewHandlers
from services.review.metrics import queue_gauges_job
from services.review.reasons import ReasonCatalogue
from services.review.routes import router
from services.review.separation import SamePerson, identity_same_person
from services.review.service import ReviewRules, ReviewService
from services.review.settings import ReviewSettings
from services.review.stats_routes import router as stats_router
from services.review.workdays import WorkingCalendar


def load_rules(settings: ReviewSettings) -> ReviewRules:
    """Read the operator's files at start: a broken file stops the service instead of misrouting."""
    return ReviewRules(
        districts=load_districts(settings.districts_file),
        calendar=WorkingCalendar.from_file(settings.review_calendar_file),
        reasons=ReasonCatalogue.from_file(settings.review_reason_codes_file),
        due_working_days=settings.review_due_working_days,
    )


def build(
    settings: ReviewSettings | None = None, keys: PersonKeys | None = None, same_person: SamePerson | None = None
) -> tuple[FastAPI, ServiceRuntime]:
    """`keys`: how sealed personal data is opened (default: identity at IDENTITY_URL with PERSONAL_DATA_TOKEN);
    `same_person`: how a decision's own_case check asks identity (default: at IDENTITY_URL)."""
    settings = settings or ReviewSettings()
    rules = load_rules(settings)
    runtime = ServiceRuntime(settings, migrations=migrations_from("services.review"))
    service = ReviewService(runtime, rules)
    own_keys = keys is None  # a given client belongs to the caller
    handlers = ReviewHandlers(service, keys or PersonKeys(settings))  # IDENTITY_URL, PERSONAL_DATA_TOKEN
    runtime.subscriptions = handlers.subscriptions()
    if own_keys:

        @runtime.on_stopped
        async def close_keys() -> None:
            await handlers.keys.aclose()
            handlers.keys = PersonKeys(settings)  # a runtime started again gets an open client

    runtime.background = [queue_gauges_job(service, settings.review_metrics_refresh_seconds)]
    app = runtime.create_app(
        "flexenroll review",
        "The accepting agencies' review of flexible-employment enrolment submissions (受理机构审核, 常州灵活就业参保).",
    )
    app.state.rules = rules
    app.state.enrollment_url = settings.review_enrollment_url
    app.state.review = service
    if same_person is None:  # ours, not a caller's: closed with the runtime (the next use opens again)
        asks = identity_same_person(settings.identity_url)
        runtime.on_stopped(asks.aclose)
        same_person = asks
    app.state.same_person = same_person

    app.include_router(router)
    app.include_router(stats_router)  # the operators' dashboard (issue 12)
    return app, runtime
