"""review's settings: the shared ones plus the agencies, the calendar and the reason codes.

The review-specific knobs carry the `review_` prefix in their names so that their environment
variables (REVIEW_AGENCIES_FILE, …) do not collide in the one `.env` all services share.
"""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings

_HERE = Path(__file__).resolve().parent


class ReviewSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "review"
    review_agencies_file: Path = _HERE / "agencies.toml"
    review_calendar_file: Path | None = _HERE / "workdays.toml"
    review_reason_codes_file: Path = _HERE / "reason_codes.toml"
    # Guide PART-8: "受理机构会在1-2个工作日内发送短信告知": the upper end is the deadline.
    review_due_working_days: int = Field(default=2, ge=1, le=30)
    review_metrics_refresh_seconds: float = Field(default=30.0, gt=0)
    # Where reviewers' browsers fetch documents from (enrollment owns them).
    enrollment_public_url: str = "http://127.0.0.1:8002"
