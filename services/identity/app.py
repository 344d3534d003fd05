"""identity's composition root: settings, runtime, service layer and routes."""

from typing import Any

from fastapi import FastAPI

from kernel.db import migrations_from
from kernel.runtime import ServiceRuntime
from services.identity.routes import router
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings


def build(settings: IdentitySettings | None = None) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or IdentitySettings()

    async def rekey_legacy_bindings(_: ServiceRuntime) -> Any:
        # Clear ID numbers left by migration 001 become keyed hashes once identity runs
        # (migrations/003_personal_data.sql says why this is not SQL).
        return await service.rekey_legacy_bindings()

    runtime = ServiceRuntime(
        settings, migrations=migrations_from("services.identity"), background=[rekey_legacy_bindings]
    )
    app = runtime.create_app(
        "flexenroll identity",
        "Accounts, log-in and real-name verification of flexible-employment workers (常州灵活就业参保).",
    )
    app.state.jwt_ttl_seconds = settings.jwt_ttl_seconds
    # The reading services' tokens for GET /v1/person-keys (docs/personal-data.md).
    app.state.key_readers = {
        name: token.get_secret_value().encode() for name, token in settings.identity_key_readers.items()
    }
    # The services allowed to ask POST /v1/people/match (docs/personal-data.md, "Who gets the key").
    app.state.match_readers = {
        name: token.get_secret_value().encode() for name, token in settings.identity_match_readers.items()
    }

    service = IdentityService.from_settings(runtime, settings)
    app.state.identity = service

    app.include_router(router)
    return app, runtime
