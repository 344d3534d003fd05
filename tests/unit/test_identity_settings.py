"""identity's own secrets (docs/personal-data.md): the ID-number hash key and the key readers'
tokens, shipped for development and refused in production like every other secret."""

import pytest
from pydantic import SecretStr, ValidationError

from kernel.settings import local_secret
from services.identity.settings import KEY_READERS, MATCH_READERS, IdentitySettings
from tests.support.tokens import PRODUCTION_PUBLIC_KEYS, PRODUCTION_SIGNING_KEY_PEM

REAL = {
    "db_password": "a-real-db-password",
    "kafka_password": "a-real-kafka-password",
    "token_public_keys": PRODUCTION_PUBLIC_KEYS,
    "identity_token_signing_key": PRODUCTION_SIGNING_KEY_PEM,
    "identity_id_number_hmac_key": "a-real-hmac-key",
    "identity_key_readers": {service: f"a-real-token-of-{service}" for service in KEY_READERS},
    "identity_match_readers": {"payment": "a-real-match-token-of-payment"},
    "identity_notify_token": "a-real-token-for-notify",
    "identity_verification_provider": "provider.of:PublicSecurity",  # never `local` in production
}


def test_production_refuses_the_shipped_token_for_one_time_codes() -> None:
    given = {k: v for k, v in REAL.items() if k != "identity_notify_token"}
    with pytest.raises(ValidationError, match="IDENTITY_NOTIFY_TOKEN is a shipped example secret"):
        IdentitySettings(environment="production", **given)  # type: ignore[arg-type]


def test_production_refuses_the_local_verification_provider() -> None:
    with pytest.raises(ValidationError, match="IDENTITY_VERIFICATION_PROVIDER=local"):
        IdentitySettings(environment="production", **{**REAL, "identity_verification_provider": "local"})  # type: ignore[arg-type]


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


def test_only_payment_may_ask_the_match_question_and_its_shipped_token_is_refused_in_production() -> None:
    asking = {name: token.get_secret_value() for name, token in IdentitySettings().identity_match_readers.items()}
    assert asking == {"payment": local_secret("identity-match", "payment")} and MATCH_READERS == ("payment",)
    assert asking["payment"] != local_secret("personal-data", "payment")  # asking is not reading keys
    given = {k: v for k, v in REAL.items() if k != "identity_match_readers"}
    with pytest.raises(ValidationError, match=r"IDENTITY_MATCH_READERS\[PAYMENT\] is a shipped"):
        IdentitySettings(environment="production", **given)  # type: ignore[arg-type]


def test_payment_refuses_its_shipped_match_token_in_production() -> None:
    from services.payment.settings import PaymentSettings  # payment's half of the match question
    from tests.support.payment import REAL as PAYMENT_REAL

    assert (
        PaymentSettings(**PAYMENT_REAL).payment_identity_match_token.get_secret_value() == "a-real-identity-match-token"
    )
    given = {k: v for k, v in PAYMENT_REAL.items() if k != "payment_identity_match_token"}
    with pytest.raises(ValidationError, match="PAYMENT_IDENTITY_MATCH_TOKEN is a shipped example secret"):
        PaymentSettings(**given)


def test_development_stand_ins_are_refused_outside_development() -> None:
    """The local code sink (issue 9) texts no one: development only, like the local provider."""
    with pytest.raises(ValidationError, match="IDENTITY_CODE_SENDER=local_sink"):
        IdentitySettings(environment="production", **{**REAL, "identity_code_sender": "local_sink"})  # type: ignore[arg-type]
    assert IdentitySettings(identity_code_sender="local_sink").identity_verification_provider == "local"
