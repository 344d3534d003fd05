"""Every secret has a production refusal: the shipped development secrets never run outside development."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from kernel.auth import SHIPPED_PUBLIC_KEYS_FILE, shipped_public_kids, shipped_signing_key_pem
from kernel.settings import SHIPPED_SECRET_PREFIX, ServiceSettings, local_secret
from services.identity.settings import IdentitySettings
from services.notify.settings import NotifySettings
from tests.support.tokens import PRODUCTION_PUBLIC_KEYS, PRODUCTION_SIGNING_KEY_PEM

REAL = {
    "db_password": "a-real-db-password",
    "kafka_password": "a-real-kafka-password",
    "token_public_keys": PRODUCTION_PUBLIC_KEYS,
}
PRODUCTION: dict[str, Any] = {"environment": "production", **REAL}


def test_development_runs_on_the_shipped_secrets_one_per_principal() -> None:
    identity, review = ServiceSettings(service="identity"), ServiceSettings(service="review")
    assert identity.kafka_secret() == local_secret("kafka", "identity") != review.kafka_secret()
    assert identity.db_secret().startswith(SHIPPED_SECRET_PREFIX) and identity.db_role == "identity"
    assert ServiceSettings(service="identity", kafka_username="ops").kafka_principal == "ops"


@pytest.mark.parametrize("missing", ["db_password", "kafka_password"])
def test_production_needs_every_secret_set(missing: str) -> None:
    given = {k: v for k, v in REAL.items() if k != missing}
    with pytest.raises(ValidationError, match=missing.upper()):
        ServiceSettings(service="identity", environment="production", **given)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["db_password", "kafka_password"])
def test_production_refuses_a_shipped_secret(name: str) -> None:
    given = {**REAL, name: local_secret("x", "identity")}
    with pytest.raises(ValidationError, match="shipped example secret"):
        ServiceSettings(service="identity", environment="production", **given)  # type: ignore[arg-type]


def test_a_service_s_own_secrets_are_refused_too() -> None:
    with pytest.raises(ValidationError, match="NOTIFY_ALIYUN_ACCESS_KEY_SECRET"):
        NotifySettings(**{**PRODUCTION, "notify_aliyun_access_key_secret": local_secret("aliyun", "notify")})
    identity: dict[str, Any] = {
        **PRODUCTION,
        "identity_id_number_hmac_key": "a-real-hmac-key",
        "identity_key_readers": {"enrollment": "a-real-reader-token"},
        "identity_match_readers": {"payment": "a-real-match-token"},
        "identity_token_signing_key": PRODUCTION_SIGNING_KEY_PEM,
        "identity_notify_token": "a-real-one-time-code-token",
        "identity_verification_provider": "provider.of:PublicSecurity",
    }
    assert IdentitySettings(**identity).environment == "production"
    with pytest.raises(ValidationError, match=r"NOTIFY_CODE_SENDERS\[IDENTITY\] is a shipped"):
        NotifySettings(**PRODUCTION)  # the shipped token identity texts one-time codes with
    shipped_reader = {"enrollment": local_secret("personal-data", "enrollment")}
    with pytest.raises(ValidationError, match="IDENTITY_KEY_READERS"):
        IdentitySettings(**{**identity, "identity_key_readers": shipped_reader})


def test_production_refuses_the_shipped_token_keys() -> None:
    """Every service verifies tokens with the shipped example public key only in development, and
    identity signs with the shipped example private key only there (kernel.auth)."""
    assert ServiceSettings(service="review").public_keys().by_kid.keys() == shipped_public_kids()
    for service in ("identity", "enrollment", "review", "payment", "notify"):
        with pytest.raises(ValidationError, match="TOKEN_PUBLIC_KEYS holds the shipped example key"):
            ServiceSettings(service=service, **{**PRODUCTION, "token_public_keys": str(SHIPPED_PUBLIC_KEYS_FILE)})
    # Rotation does not smuggle it in either: a JWKS with a real key and the shipped one.
    both = json.dumps(
        {
            "keys": [
                *json.loads(PRODUCTION_PUBLIC_KEYS)["keys"],
                *json.loads(SHIPPED_PUBLIC_KEYS_FILE.read_text())["keys"],
            ]
        }
    )
    with pytest.raises(ValidationError, match="shipped example key"):
        ServiceSettings(service="review", **{**PRODUCTION, "token_public_keys": both})
    assert ServiceSettings(service="review", **PRODUCTION).environment == "production"

    identity: dict[str, Any] = {
        **PRODUCTION,
        "identity_id_number_hmac_key": "a-real-hmac-key",
        "identity_key_readers": {"enrollment": "a-real-reader-token"},
        "identity_match_readers": {"payment": "a-real-match-token"},
        "identity_notify_token": "a-real-notify-token",
    }
    with pytest.raises(ValidationError, match="IDENTITY_TOKEN_SIGNING_KEY is the shipped example key"):
        IdentitySettings(**identity)  # the default: the shipped private key
    with pytest.raises(ValidationError, match="IDENTITY_TOKEN_SIGNING_KEY is the shipped example key"):
        IdentitySettings(**{**identity, "identity_token_signing_key": shipped_signing_key_pem()})
    real = IdentitySettings(
        identity_token_signing_key=PRODUCTION_SIGNING_KEY_PEM, token_public_keys=PRODUCTION_PUBLIC_KEYS
    )
    assert real.signing_key().kid in real.public_keys().by_kid and real.signing_key().kid not in shipped_public_kids()
    # In development both are the shipped pair.
    dev = IdentitySettings()
    assert (
        dev.signing_key().kid in shipped_public_kids() and dev.verifying_keys().by_kid.keys() == shipped_public_kids()
    )
