"""notify's settings: the shared ones plus the SMS gateway, templates and the sender's pace.

notify's own knobs are read from NOTIFY_-prefixed variables (NOTIFY_GATEWAY, …) while the
shared ones stay unprefixed (DATABASE_URL, KAFKA_BOOTSTRAP), so one `.env` serves all services.
In code (and tests) they are passed by field name: NotifySettings(gateway="aliyun").
"""

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", validate_by_name=True, validate_by_alias=True)

    service: str = "notify"

    gateway: Literal["local", "aliyun"] = Field("local", validation_alias="notify_gateway")
    # TOML with one table per template (text, aliyun_template_code); None = the packaged file.
    templates_file: Path | None = Field(None, validation_alias="notify_templates_file")
    # The sign (签名) the provider puts in front of every text as 【…】.
    sign_name: str = Field("常州人社", min_length=1, validation_alias="notify_sign_name")

    aliyun_access_key_id: SecretStr | None = Field(None, validation_alias="notify_aliyun_access_key_id")
    aliyun_access_key_secret: SecretStr | None = Field(None, validation_alias="notify_aliyun_access_key_secret")
    aliyun_endpoint: str = Field("dysmsapi.aliyuncs.com", validation_alias="notify_aliyun_endpoint")
    # Overrides the templates file's aliyun_template_code per template, e.g. {"review_approved": "SMS_1"}.
    aliyun_template_codes: dict[str, str] = Field(default_factory=dict, validation_alias="notify_aliyun_template_codes")

    sender_poll_seconds: float = Field(1.0, gt=0, le=60, validation_alias="notify_sender_poll_seconds")
    sender_batch: int = Field(20, ge=1, le=500, validation_alias="notify_sender_batch")
    max_send_attempts: int = Field(5, ge=1, le=50, validation_alias="notify_max_send_attempts")
    retry_backoff_seconds: float = Field(5.0, ge=0, le=3600, validation_alias="notify_retry_backoff_seconds")
    send_timeout_seconds: float = Field(10.0, gt=0, le=120, validation_alias="notify_send_timeout_seconds")
    # A message left in `sending` longer than this belongs to a sender that died: another
    # sender takes it over, asking the provider first. Must outlast one lookup plus one send.
    sending_lease_seconds: float = Field(60.0, gt=0, le=3600, validation_alias="notify_sending_lease_seconds")

    # Replay guard: a review decision older than this when notify first sees it (or when its
    # waiting message finally gets the phone) is recorded `skipped_stale` and never texted, so that
    # rebuilding notify from the topics does not text history again. Raise it for a planned
    # catch-up after a long outage.
    max_decision_age_hours: float = Field(72.0, gt=0, le=87_600, validation_alias="notify_max_decision_age_hours")

    @property
    def max_decision_age(self) -> timedelta:
        return timedelta(hours=self.max_decision_age_hours)

    @model_validator(mode="after")
    def _lease_outlasts_calls(self) -> Self:
        if self.sending_lease_seconds < 3 * self.send_timeout_seconds:
            raise ValueError("sending_lease_seconds must be at least 3 x send_timeout_seconds")
        if self.gateway == "aliyun" and not (self.aliyun_access_key_id and self.aliyun_access_key_secret):
            raise ValueError("the aliyun gateway needs NOTIFY_ALIYUN_ACCESS_KEY_ID and _SECRET")
        return self
