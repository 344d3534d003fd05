"""payment's settings: the shared ones plus the tariff folder, the due day and the channels' keys
(docs/service-anatomy.md: own knobs are `payment_<knob>`, read from PAYMENT_<KNOB>)."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

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
