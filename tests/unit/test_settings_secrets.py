"""Every secret has a production refusal: the shipped development secrets never run outside development."""

from typing import Any

import pytest
from pydantic import ValidationError

from kernel.settings import SHIPPED_SECRET_PREFIX, ServiceSettings, local_secret
from services.identity.settings import IdentitySettings
from services.notify.settings import NotifySettings

REAL = {"db_password": "a-real-db-password", "kafka_password": "a-real-kafka-password", "jwt_secret": "a-real-jwt"}
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


@pytest.mark.parametrize("name", ["db_password", "kafka_password", "jwt_secret"])
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
    }
    assert IdentitySettings(**identity).environment == "production"
    shipped_reader = {"enrollment": local_secret("personal-data", "enrollment")}
    with pytest.raises(ValidationError, match="IDENTITY_KEY_READERS"):
        IdentitySettings(**{**identity, "identity_key_readers": shipped_reader})
