"""identity's composition root: settings, runtime, service layer and routes."""

from fastapi import FastAPI

from contracts.reference import load_districts
from kernel.db import migrations_from
from kernel.runtime import ServiceRuntime
from services.identity.routes import router
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from services.identity.verification import load_provider


def build(settings: IdentitySettings | None = None) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or IdentitySettings()
    runtime = ServiceRuntime(settings, migrations=migrations_from("services.identity"))
    app = runtime.create_app(
        "flexenroll identity",
        "Accounts, log-in and real-name verification of flexible-employment workers (常州灵活就业参保).",
    )
    provider = load_provider(settings.identity_verification_provider, settings.identity_verification_deny_list)
    directory = load_districts(settings.districts_file)  # staff agencies must exist in it
    app.state.jwt_ttl_seconds = settings.jwt_ttl_seconds

    app.state.identity = IdentityService(runtime, provider, directory)

    app.include_router(router)
    return app, runtime
