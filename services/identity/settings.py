"""identity's settings: the shared ones plus the verification provider."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "identity"
    verification_provider: str = "local"
    verification_deny_list: Path | None = None
