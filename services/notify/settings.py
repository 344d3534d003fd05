"""notify's settings: the shared ones plus the SMS gateway, templates and the sender's pace.

notify's own knobs are fields named `notify_<knob>`, read from the variable NOTIFY_<KNOB>
(NOTIFY_GATEWAY, …); the shared ones stay unprefixed (DATABASE_URL, KAFKA_BOOTSTRAP), so one
`.env` serves all services (docs/service-anatomy.md).
"""

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kernel.effects import check_lease
from kernel.settings import ServiceSettings, local_secret


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "notify"

    notify_gateway: Literal["local", "aliyun"] = "local"
    # TOML with one table per template (text, aliyun_template_code); None = the packaged file.
    notify_templates_file: Path | None = None
    # The sign (签名) the provider puts in front of every text as 【…】.
    notify_sign_name: str = Field("常州人社", min_length=1)

    notify_aliyun_access_key_id: SecretStr | None = None
    notify_aliyun_access_key_secret: SecretStr | None = None
    notify_aliyun_endpoint: str = "dysmsapi.aliyuncs.com"
    # Overrides the templates file's aliyun_template_code per template, e.g. {"review_approved": "SMS_1"}.
    notify_aliyun_template_codes: dict[str, str] = Field(default_factory=dict)

    notify_sender_poll_seconds: float = Field(1.0, gt=0, le=60)
    notify_sender_batch: int = Field(20, ge=1, le=500)
    notify_max_send_attempts: int = Field(5, ge=1, le=50)
    notify_retry_backoff_seconds: float = Field(5.0, ge=0, le=3600)
    notify_send_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # A message left in `sending` longer than this belongs to a sender that died: another
    # sender takes it over, asking the provider first. Must outlast one lookup plus one send.
    notify_sending_lease_seconds: float = Field(60.0, gt=0, le=3600)

    # Replay guard: a review decision older than this when notify first sees it (or when its
    # waiting message finally gets the phone) is recorded `skipped_stale` and never texted, so that
    # rebuilding notify from the topics does not text history again. Raise it for a planned
    # catch-up after a long outage.
    notify_max_decision_age_hours: float = Field(72.0, gt=0, le=87_600)

    # Who may ask notify to text a one-time code (POST /v1/internal/one-time-codes): service name ->
    # its bearer token (identity's IDENTITY_NOTIFY_TOKEN). JSON object; the shipped development
    # token is refused outside development like every `local-` secret.
    notify_code_senders: dict[str, SecretStr] = Field(
        default_factory=lambda: {"identity": SecretStr(local_secret("one-time-codes", "identity"))}
    )

    @property
    def max_decision_age(self) -> timedelta:
        return timedelta(hours=self.notify_max_decision_age_hours)

    @model_validator(mode="after")
    def _lease_outlasts_calls(self) -> Self:
        try:
            check_lease(self.notify_sending_lease_seconds, self.notify_send_timeout_seconds)
        except ValueError as exc:
            raise ValueError(f"NOTIFY_SENDING_LEASE_SECONDS, NOTIFY_SEND_TIMEOUT_SECONDS: {exc}") from exc
        keys = self.notify_aliyun_access_key_id and self.notify_aliyun_access_key_secret
        if self.notify_gateway == "aliyun" and not keys:
            raise ValueError("the aliyun gateway needs NOTIFY_ALIYUN_ACCESS_KEY_ID and _SECRET")
        return self
