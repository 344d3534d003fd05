"""identity's settings: the shared ones plus the verification provider, the key of the ID-number
hash and the services that may read person keys (docs/service-anatomy.md: own knobs are
`identity_<knob>`, read from IDENTITY_<KNOB>)."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings, local_secret

# The services that open sealed personal data (docs/personal-data.md, "Who gets the key").
KEY_READERS = ("enrollment", "review", "notify", "payment")


# The services that may ask whether an ID number and a name are one verified person's
# (docs/personal-data.md, "Who gets the key": payment's lookup for paying for another person).
MATCH_READERS = ("payment",)


def _shipped_key_readers() -> dict[str, SecretStr]:
    return {service: SecretStr(local_secret("personal-data", service)) for service in KEY_READERS}


def _shipped_match_readers() -> dict[str, SecretStr]:
    return {service: SecretStr(local_secret("identity-match", service)) for service in MATCH_READERS}


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "identity"
    # `local`, or "module:Class" of a real public-security / face-check provider (verification.py).
    identity_verification_provider: str = "local"
    # The local provider's stand-in for the public-security database: ID numbers it refuses.
    identity_verification_deny_list: Path | None = None
    # ID numbers are kept for uniqueness only as HMAC-SHA-256 under this key (docs/personal-data.md,
    # "In the databases"). Changing it orphans every stored binding: set it once per environment.
    identity_id_number_hmac_key: SecretStr = SecretStr(local_secret("id-number-hmac", "identity"))
    # Who may fetch a person's data key: service name -> its bearer token (that service's
    # PERSONAL_DATA_TOKEN). IDENTITY_KEY_READERS is a JSON object, e.g. {"notify": "..."}.
    identity_key_readers: dict[str, SecretStr] = Field(default_factory=_shipped_key_readers)
    # Who may ask POST /v1/people/match: service name -> its bearer token (payment's
    # PAYMENT_IDENTITY_MATCH_TOKEN). A token of its own, so that asking never lets a service read keys.
    identity_match_readers: dict[str, SecretStr] = Field(default_factory=_shipped_match_readers)
