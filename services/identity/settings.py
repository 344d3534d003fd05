"""identity's settings: the shared ones plus the verification provider (docs/service-anatomy.md:
own knobs are `identity_<knob>`, read from IDENTITY_<KNOB>)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "identity"
    # `local`, or "module:Class" of a real public-security / face-check provider (verification.py).
    identity_verification_provider: str = "local"
    # The local provider's stand-in for the public-security database: ID numbers it refuses.
    identity_verification_deny_list: Path | None = None
