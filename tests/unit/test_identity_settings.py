"""identity's own secrets (docs/personal-data.md): the ID-number hash key and the key readers'
tokens, shipped for development and refused in production like every other secret."""

import pytest
from pydantic import SecretStr, ValidationError

from kernel.settings import local_secret
from services.identity.settings import KEY_READERS, IdentitySettings

REAL = {
    "db_password": "a-real-db-password",
    "kafka_password": "a-real-kafka-password",
    "jwt_secret": "a-real-jwt",
    "identity_id_number_hmac_key": "a-real-hmac-key",
    "identity_key_readers": {service: f"a-real-token-of-{service}" for service in KEY_READERS},
}


def test_development_ships_one_reader_token_per_reading_service() -> None:
    settings = IdentitySettings()
    readers = {name: token.get_secret_value() for name, token in settings.identity_key_readers.items()}
    assert readers == {service: local_secret("personal-data", service) for service in KEY_READERS}
    assert set(readers) == {"enrollment", "review", "notify", "payment"}
    assert settings.identity_id_number_hmac_key.get_secret_value() == local_secret("id-number-hmac", "identity")


def test_production_runs_with_real_secrets() -> None:
    settings = IdentitySettings(environment="production", **REAL)  # type: ignore[arg-type]
    assert settings.identity_key_readers["notify"] == SecretStr("a-real-token-of-notify")


def test_production_refuses_the_shipped_id_number_hash_key() -> None:
    given = {k: v for k, v in REAL.items() if k != "identity_id_number_hmac_key"}
    with pytest.raises(ValidationError, match="IDENTITY_ID_NUMBER_HMAC_KEY is a shipped example secret"):
        IdentitySettings(environment="production", **given)  # type: ignore[arg-type]


@pytest.mark.parametrize("reader", KEY_READERS)
def test_production_refuses_a_shipped_reader_token_entry_by_entry(reader: str) -> None:
    readers = {**REAL["identity_key_readers"], reader: local_secret("personal-data", reader)}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match=rf"IDENTITY_KEY_READERS\[{reader.upper()}\] is a shipped"):
        IdentitySettings(environment="production", **{**REAL, "identity_key_readers": readers})  # type: ignore[arg-type]


def test_production_refuses_the_default_readers() -> None:
    given = {k: v for k, v in REAL.items() if k != "identity_key_readers"}
    with pytest.raises(ValidationError, match="IDENTITY_KEY_READERS"):
        IdentitySettings(environment="production", **given)  # type: ignore[arg-type]
