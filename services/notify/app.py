"""notify's composition root: templates, gateway, consumers, the sender and the routes."""

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from kernel.clock import utc_now
from kernel.db import migrations_from
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime
from services.notify.gateway import load_gateway
from services.notify.handlers import NotifyHandlers
from services.notify.one_time_codes import router as one_time_codes_router
from services.notify.routes import router
from services.notify.sender import Sender
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from services.notify.templates import load_templates


def build(
    settings: NotifySettings | None = None,
    clock: Callable[[], datetime] = utc_now,
    keys: PersonKeys | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    """`clock` is the replay guard's `now` (how old a decision is); tests move it. `keys`: how the
    sealed phone is opened (default: identity at IDENTITY_URL with PERSONAL_DATA_TOKEN)."""
    settings = settings or NotifySettings()
    # Loaded now, so that a broken templates file stops the service before it consumes anything.
    templates = load_templates(
        settings.notify_templates_file, settings.notify_sign_name, settings.notify_aliyun_template_codes
    )
    runtime = ServiceRuntime(settings, migrations=migrations_from("services.notify"))
    service = NotifyService(runtime, templates, settings.max_decision_age, clock)
    own_keys = keys is None  # a given client belongs to the caller
    handlers = NotifyHandlers(service, keys or PersonKeys(settings))  # IDENTITY_URL, PERSONAL_DATA_TOKEN
    runtime.subscriptions = handlers.subscriptions()
    if own_keys:

        @runtime.on_stopped
        async def close_keys() -> None:
            await handlers.keys.aclose()
            handlers.keys = PersonKeys(settings)  # a runtime started again gets an open client

    async def run_sender(runtime: ServiceRuntime) -> None:
        gateway = load_gateway(settings, templates, runtime.pool)
        await Sender(runtime.pool, service, gateway, settings).run()

    runtime.background = [run_sender]
    app = runtime.create_app(
        "flexenroll notify",
        "Text messages to applicants (审核通过 / 审核不通过), exactly once per review decision, and "
        "to insured persons: a receipt per payment settlement, a reminder per overdue bill, a message per "
        "failed bank withholding collection, each exactly once; the SMS log for operators.",
    )
    app.state.notify = service
    app.include_router(router)
    # One-time codes for identity (one_time_codes.py): its callers' tokens, the gateway's makings.
    app.state.settings, app.state.templates = settings, templates
    app.state.code_senders = {
        name: token.get_secret_value().encode() for name, token in settings.notify_code_senders.items()
    }
    app.include_router(one_time_codes_router)
    return app, runtime
