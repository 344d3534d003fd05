"""review's settings: the shared ones (districts_file among them: who reviews where) plus the
calendar, the reason codes, the deadline and where enrollment's documents are fetched from
(docs/service-anatomy.md: own knobs are `review_<knob>`, read from REVIEW_<KNOB>)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings

_HERE = Path(__file__).resolve().parent


class ReviewSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "review"
    review_calendar_file: Path | None = _HERE / "workdays.toml"
    review_reason_codes_file: Path = _HERE / "reason_codes.toml"
    # Guide PART-8: "受理机构会在1-2个工作日内发送短信告知": the upper end is the deadline.
    review_due_working_days: int = Field(default=2, ge=1, le=30)
    review_metrics_refresh_seconds: float = Field(default=30.0, gt=0)
    # The base URL reviewers' browsers fetch enrollment's documents from (contracts.http).
    review_enrollment_url: str = "http://127.0.0.1:8002"
