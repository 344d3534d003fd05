"""web's settings: where the services' APIs are, the CSRF key, and how long a page waits.

web's own knobs are WEB_<KNOB>; the shared ones (IDENTITY_URL, TOKEN_PUBLIC_KEYS, KAFKA_*) stay
unprefixed (docs/service-anatomy.md). web has no database of its own: only the broker password is
required outside development (its read-only principal, for the operators' pages)."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings, local_secret


class WebSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    required_secrets: ClassVar[tuple[str, ...]] = ("kafka_password",)

    service: str = "web"

    web_enrollment_url: str = "http://127.0.0.1:8002"
    web_review_url: str = "http://127.0.0.1:8003"
    web_payment_url: str = "http://127.0.0.1:8004"
    web_notify_url: str = "http://127.0.0.1:8005"
    # Signs the CSRF tokens of the forms (services/web/session.py); refused outside development
    # when it is the shipped one.
    web_csrf_secret: SecretStr = SecretStr(local_secret("csrf", "web"))
    # How long a page waits for a service's API before it says the system is busy.
    web_api_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # A document upload passes through web to enrollment: its size limit, with room for the form.
    web_upload_max_bytes: int = Field(11 * 1024 * 1024, ge=1024)

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS, except on a developer's loopback (`make up`)."""
        return self.environment != "development"
