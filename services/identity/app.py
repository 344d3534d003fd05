"""identity's composition root: settings, runtime, service layer and routes."""

import hashlib
import hmac
from typing import Any

from fastapi import FastAPI

from kernel.db import migrations_from
from kernel.runtime import ServiceRuntime
from services.identity.phone_codes import PhoneCodes, make_sender
from services.identity.phone_codes import router as phone_codes_router
from services.identity.routes import router, well_known
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from services.identity.throttling import Guard, Rules


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
    # identity alone signs tokens; it verifies them (and serves /.well-known/jwks.json) with
    # TOKEN_PUBLIC_KEYS plus its own signing key's public key.
    app.state.token_signing_key = settings.signing_key()
    app.state.token_keys = settings.verifying_keys()
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
    runtime.token_guard = service  # identity's routes ask its own table, not a refreshed copy

    wire_phone_codes_and_throttles(app, runtime, settings)

    app.include_router(router)
    app.include_router(phone_codes_router)
    app.include_router(well_known)
    return app, runtime


def wire_phone_codes_and_throttles(app: FastAPI, runtime: ServiceRuntime, settings: IdentitySettings) -> None:
    """The throttles (services/identity/throttling.py) and the one-time codes (phone_codes.py),
    on the runtime's pool once it exists; 429 answers carry Retry-After."""
    root = settings.identity_id_number_hmac_key.get_secret_value().encode()
    throttle_key = hmac.new(root, b"identity-throttle", hashlib.sha256).digest()
    code_key = hmac.new(root, b"identity-phone-codes", hashlib.sha256).digest()

    @runtime.on_started
    def wire() -> None:
        pool = runtime.pool
        app.state.guard = Guard(pool, throttle_key, Rules.from_settings(settings))
        app.state.phone_codes = PhoneCodes(pool, make_sender(settings, pool), code_key, settings)

    @runtime.on_stopped
    async def close_sender() -> None:
        codes: PhoneCodes | None = getattr(app.state, "phone_codes", None)
        if codes is not None:
            await codes.sender.aclose()
