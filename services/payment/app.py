"""payment's composition root: settings, the tariffs, runtime, consumer, routes."""

import asyncio

from fastapi import FastAPI

from kernel.db import migrations_from
from kernel.effects import Dispatcher, poll_forever
from kernel.logging import get_logger
from kernel.runtime import ServiceRuntime
from kernel.web import declare_body_limit
from services.payment.bank import HttpBankGateway, collection_policy, load_bank_gateway
from services.payment.channels import ChannelVerifiers
from services.payment.handlers import PaymentHandlers
from services.payment.people import PeopleDirectory
from services.payment.routes import MAX_NOTIFICATION_BYTES, NOTIFICATIONS_PATH, notification_too_large, router
from services.payment.service import PaymentRules, PaymentService
from services.payment.settings import PaymentSettings
from services.payment.stats_routes import router as stats_router
from services.payment.tariff import TariffBook
from services.payment.tariff_routes import router as tariff_router
from services.payment.withholding_routes import AGREEMENTS_PATH
from services.payment.withholding_routes import router as withholding_router
from services.payment.withholding_service import COLLECTIONS

log = get_logger(__name__)


def load_rules(settings: PaymentSettings) -> PaymentRules:
    """Read the operator's tariff files at start: a broken file stops the service instead of billing wrong."""
    return PaymentRules(tariffs=TariffBook.from_folder(settings.payment_tariffs_dir), due_day=settings.payment_due_day)


def build(
    settings: PaymentSettings | None = None, people: PeopleDirectory | None = None
) -> tuple[FastAPI, ServiceRuntime]:
    """`people`: the client of identity's match question (default: identity at IDENTITY_URL with
    PAYMENT_IDENTITY_MATCH_TOKEN); a given client belongs to the caller."""
    settings = settings or PaymentSettings()
    rules = load_rules(settings)
    runtime = ServiceRuntime(settings, migrations=migrations_from("services.payment"))
    service = PaymentService(runtime, rules)
    handlers = PaymentHandlers(service)
    runtime.subscriptions = handlers.subscriptions()

    @runtime.on_started
    def say_which_tariffs_are_examples() -> None:
        if years := rules.tariffs.example_years:
            log.warning("tariff_figures_are_examples", years=years)

    app = runtime.create_app(
        "flexenroll payment",
        "Contribution accounts and monthly bills of insured flexible workers (缴费, 常州灵活就业参保).",
    )
    app.state.payment = service
    # Keys load once at start: a broken key stops the service instead of refusing payments later.
    app.state.payment_channels = ChannelVerifiers(settings)
    # POST /v1/bills/lookup asks identity (services/payment/README.md, "Paying for another person").
    app.state.lookup_min_seconds = settings.payment_lookup_min_seconds
    app.state.payment_people = people or PeopleDirectory(settings)
    if people is None:

        @runtime.on_stopped
        async def close_people() -> None:
            await app.state.payment_people.aclose()
            app.state.payment_people = PeopleDirectory(settings)  # a runtime started again gets an open client

    async def collect(runtime: ServiceRuntime) -> None:
        """Send the withholding runs' collection requests, each once (kernel.effects)."""
        gateway = load_bank_gateway(settings, runtime.pool)
        policy = collection_policy(settings)
        dispatcher = Dispatcher(runtime.pool, COLLECTIONS, gateway, policy, on_final=service.record_collection_final)
        try:
            await poll_forever(dispatcher.run_once, policy, COLLECTIONS.name)
        finally:
            if isinstance(gateway, HttpBankGateway):
                await gateway.aclose()

    async def record_overdue(runtime: ServiceRuntime) -> None:
        """Bills whose due day passed become BillOverdue (one reminder SMS each, by notify)."""
        while True:
            try:
                await service.mark_overdue()
            except Exception as exc:  # the database away for a while must not end the task
                log.warning("overdue_check_failed", error=repr(exc))
            await asyncio.sleep(settings.payment_overdue_check_seconds)

    runtime.background = [collect, record_overdue]
    app.include_router(router)
    app.include_router(withholding_router)
    app.include_router(stats_router)  # the operators' dashboard (issue 12)
    app.include_router(tariff_router)  # the tiers' amounts for the applicant's choice (issue 12)
    # A channel's notification: bounded like any JSON body, refused with the route's own code.
    for path in (NOTIFICATIONS_PATH, AGREEMENTS_PATH):
        declare_body_limit(app, path, MAX_NOTIFICATION_BYTES, refusal=notification_too_large())
    return app, runtime
