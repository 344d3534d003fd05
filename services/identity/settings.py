"""identity's settings: the shared ones plus the verification provider, the key of the ID-number
hash and the services that may read person keys (docs/service-anatomy.md: own knobs are
`identity_<knob>`, read from IDENTITY_<KNOB>)."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from kernel.auth import PublicKeys, SigningKey, shipped_signing_key_pem
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

    # --- SMS one-time codes (services/identity/phone_codes.py) --------------------------------
    # `notify`: identity asks notify (IDENTITY_NOTIFY_URL, with IDENTITY_NOTIFY_TOKEN, which must be
    # in notify's NOTIFY_CODE_SENDERS) to text the code through its gateway. `local_sink`
    # (development and tests only): the text is written to identity's `code_sink` table instead.
    identity_code_sender: Literal["notify", "local_sink"] = "notify"
    identity_notify_url: str = "http://127.0.0.1:8005"
    identity_notify_token: SecretStr = SecretStr(local_secret("one-time-codes", "identity"))
    identity_code_ttl_seconds: int = Field(300, ge=30, le=3600)
    identity_code_max_attempts: int = Field(5, ge=1, le=20)
    # Resend limit: at most one code per phone per IDENTITY_CODE_RESEND_WINDOW_SECONDS, and
    # IDENTITY_CODE_PHONE_LIMIT per hour; IDENTITY_CODE_ADDRESS_LIMIT code requests per client
    # address per hour.
    identity_code_resend_limit: int = Field(1, ge=1)
    identity_code_resend_window_seconds: float = Field(60, ge=0)
    identity_code_phone_limit: int = Field(5, ge=1)
    identity_code_phone_window_seconds: float = Field(3600, ge=0)
    identity_code_address_limit: int = Field(20, ge=1)
    identity_code_address_window_seconds: float = Field(3600, ge=0)

    # --- Throttling (kernel/throttle.py; services/identity/README.md, "Throttling") -----------
    # Log-in: after IDENTITY_LOGIN_ACCOUNT_LIMIT failures of one phone within the window, the
    # account is locked for IDENTITY_LOGIN_ACCOUNT_LOCKOUT_SECONDS, doubled at each new lock-out
    # (at most the max); the same per client address with its own numbers.
    identity_login_account_limit: int = Field(5, ge=1)
    identity_login_account_window_seconds: float = Field(900, ge=0)
    identity_login_account_lockout_seconds: float = Field(60, ge=0)
    identity_login_account_max_lockout_seconds: float = Field(86400, ge=0)
    identity_login_address_limit: int = Field(30, ge=1)
    identity_login_address_window_seconds: float = Field(900, ge=0)
    identity_login_address_lockout_seconds: float = Field(300, ge=0)
    identity_login_address_max_lockout_seconds: float = Field(86400, ge=0)
    # Registration: at most this many accounts per client address per window.
    identity_register_address_limit: int = Field(10, ge=1)
    identity_register_address_window_seconds: float = Field(3600, ge=0)
    # Real-name verification: failures per account lock it out (backoff as log-in); attempts per
    # client address are a plain rate.
    identity_verify_account_limit: int = Field(5, ge=1)
    identity_verify_account_window_seconds: float = Field(3600, ge=0)
    identity_verify_account_lockout_seconds: float = Field(900, ge=0)
    identity_verify_account_max_lockout_seconds: float = Field(86400, ge=0)
    identity_verify_address_limit: int = Field(20, ge=1)
    identity_verify_address_window_seconds: float = Field(3600, ge=0)

    @model_validator(mode="after")
    def _development_stand_ins_only_in_development(self) -> Self:
        if self.environment != "development":
            if self.identity_verification_provider == "local":
                raise ValueError(
                    "IDENTITY_VERIFICATION_PROVIDER=local accepts any sound ID number: "
                    "name a real provider (module:Class) outside development"
                )
            if self.identity_code_sender != "notify":
                raise ValueError("IDENTITY_CODE_SENDER=local_sink texts no one: use notify outside development")
        return self

    # The Ed25519 private key (PEM, PKCS#8) identity alone signs bearer tokens with; its public key
    # must be in every service's TOKEN_PUBLIC_KEYS (services/identity/README.md, "Tokens").
    # Default: the shipped development key deploy/local/keys/EXAMPLE-*, refused outside development.
    identity_token_signing_key: SecretStr = Field(
        default_factory=lambda: SecretStr(shipped_signing_key_pem()), validate_default=True
    )

    @field_validator("identity_token_signing_key")
    @classmethod
    def _no_shipped_signing_key_outside_development(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        key = SigningKey.from_pem(value.get_secret_value())  # a malformed key fails here, at start
        shipped = SigningKey.from_pem(shipped_signing_key_pem())
        if info.data.get("environment") != "development" and key.kid == shipped.kid:
            raise ValueError(
                "IDENTITY_TOKEN_SIGNING_KEY is the shipped example key: set a real one outside development"
            )
        return value

    def signing_key(self) -> SigningKey:
        return SigningKey.from_pem(self.identity_token_signing_key.get_secret_value())

    def verifying_keys(self) -> PublicKeys:
        """TOKEN_PUBLIC_KEYS with identity's own signing key (what GET /.well-known/jwks.json serves)."""
        return self.public_keys().with_key(self.signing_key().public)
