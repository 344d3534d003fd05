"""payment's settings: the shared ones plus the tariff folder, the due day and the channels' keys
(docs/service-anatomy.md: own knobs are `payment_<knob>`, read from PAYMENT_<KNOB>)."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kernel.effects import check_lease
from kernel.settings import ServiceSettings, local_secret
from services.payment.channels.config import ChannelSecrets

_HERE = Path(__file__).resolve().parent


class PaymentSettings(ServiceSettings, ChannelSecrets):
    """ChannelSecrets' keys are top-level fields, so the kernel's rule refuses their shipped
    `local-` values outside development (services/payment/channels/README.md, "Keys and secrets")."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "payment"
    # One `<year>.toml` per year (services/payment/README.md, "Tariffs").
    payment_tariffs_dir: Path = _HERE / "tariffs"
    # A month's bill is due on this day of the following month; at most 28, so every month has it.
    payment_due_day: int = Field(default=15, ge=1, le=28)
    # payment's token for identity's POST /v1/people/match (docs/personal-data.md, "Who gets the
    # key"): one of identity's IDENTITY_MATCH_READERS. Shipped `local-`, so refused outside development.
    payment_identity_match_token: SecretStr = SecretStr(local_secret("identity-match", "payment"))
    # Every answer of POST /v1/bills/lookup takes at least this long, so that its timing does not
    # tell a known ID number from an unknown one (services/payment/README.md, "Paying for another person").
    payment_lookup_min_seconds: float = Field(default=0.3, ge=0, le=5)

    # Bank withholding (services/payment/README.md, "Bank withholding"): where collection requests
    # go. `local` is a table that collects nothing, so it is refused outside development.
    payment_bank_gateway: Literal["local", "http"] = "local"
    payment_bank_gateway_url: str = ""
    # Signs our requests to the bank's gateway (the HMAC format of channels/README.md).
    payment_bank_gateway_secret: SecretStr = SecretStr(local_secret("hmac", "bank_gateway"))
    # kernel.effects' pace for collection requests (kernel/effects.py, Policy).
    payment_collector_poll_seconds: float = Field(default=1.0, gt=0)
    payment_collection_max_attempts: int = Field(default=5, ge=1)
    payment_collection_backoff_seconds: float = Field(default=30.0, gt=0)
    payment_collection_timeout_seconds: float = Field(default=10.0, gt=0)
    payment_collection_lease_seconds: float = Field(default=60.0, gt=0)
    # How often the service records bills that became overdue (BillOverdue, one reminder each).
    payment_overdue_check_seconds: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _bank_gateway(self) -> Self:
        check_lease(self.payment_collection_lease_seconds, self.payment_collection_timeout_seconds)
        url = self.payment_bank_gateway_url
        plain = not url.startswith("https://") and (self.environment != "development" or not url)
        if self.payment_bank_gateway == "http" and plain:
            raise ValueError("PAYMENT_BANK_GATEWAY=http needs PAYMENT_BANK_GATEWAY_URL (https outside development)")
        if self.payment_bank_gateway == "local" and self.environment != "development":
            raise ValueError("PAYMENT_BANK_GATEWAY=local collects nothing: set http outside development")
        return self
