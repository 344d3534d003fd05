"""notify's composition root: templates, gateway, consumers, the sender and the routes."""

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from contracts.topics import IDENTITY_EVENTS, REVIEW_EVENTS
from kernel.db import migrations_from
from kernel.runtime import ServiceRuntime, Subscription
from services.notify.gateway import load_gateway
from services.notify.handlers import NotifyHandlers, utc_now
from services.notify.routes import router
from services.notify.sender import Sender
from services.notify.settings import NotifySettings
from services.notify.templates import load_templates


def build(
    settings: NotifySettings | None = None, clock: Callable[[], datetime] = utc_now
) -> tuple[FastAPI, ServiceRuntime]:
    """`clock` is the replay guard's `now` (how old a decision is); tests move it."""
    settings = settings or NotifySettings()
    # Loaded now, so that a broken templates file stops the service before it consumes anything.
    templates = load_templates(settings.templates_file, settings.sign_name, settings.aliyun_template_codes)
    handlers = NotifyHandlers(templates, settings.max_decision_age, clock)

    async def run_sender(runtime: ServiceRuntime) -> None:
        gateway = load_gateway(settings, templates, runtime.pool)
        await Sender(runtime.pool, runtime.store, gateway, settings, clock).run()

    runtime = ServiceRuntime(
        settings,
        migrations=migrations_from("services.notify"),
        # One group for both topics: recipients and decisions arrive in whatever order.
        subscriptions=[Subscription("sms", [IDENTITY_EVENTS, REVIEW_EVENTS], handlers.by_event_type())],
        background=[run_sender],
    )
    app = runtime.create_app(
        "flexenroll notify",
        "Text messages to applicants (审核通过 / 审核不通过), exactly once per review decision; "
        "the SMS log for operators.",
    )
    app.include_router(router)
    return app, runtime
