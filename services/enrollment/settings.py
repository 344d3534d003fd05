"""enrollment's settings: the shared ones plus the eligibility, document and form knobs."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings

PACKAGE_DIR = Path(__file__).resolve().parent

RetirementMode = Literal["guide", "gradual_2025"]


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    service: str = "enrollment"
    # guide: the 2020 guide's 男未满60周岁、女未满55周岁; gradual_2025: the 2024 NPC Standing
    # Committee schedule by birth month (see services/enrollment/ages.py for the citation).
    retirement_age_mode: RetirementMode = Field(
        default="guide", validation_alias=AliasChoices("ENROLLMENT_RETIREMENT_AGE_MODE", "retirement_age_mode")
    )
    minimum_age: int = Field(
        default=16, ge=0, le=30, validation_alias=AliasChoices("ENROLLMENT_MINIMUM_AGE", "minimum_age")
    )
    document_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("ENROLLMENT_DOCUMENT_MAX_BYTES", "document_max_bytes"),
    )
    blob_root: Path = Field(default=Path(".run/blobs"), validation_alias=AliasChoices("BLOB_ROOT", "blob_root"))
    notice_file: Path = Field(
        default=PACKAGE_DIR / "notice.toml", validation_alias=AliasChoices("ENROLLMENT_NOTICE_FILE", "notice_file")
    )
    agency_notice_file: Path = Field(
        default=PACKAGE_DIR / "agency_notice.toml",
        validation_alias=AliasChoices("ENROLLMENT_AGENCY_NOTICE_FILE", "agency_notice_file"),
    )
    districts_file: Path = Field(
        default=PACKAGE_DIR / "districts.toml",
        validation_alias=AliasChoices("ENROLLMENT_DISTRICTS_FILE", "districts_file"),
    )
    # A CJK TrueType font for the registration form (Debian: fonts-wqy-microhei).
    pdf_font_path: Path = Field(
        default=Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
        validation_alias=AliasChoices("ENROLLMENT_PDF_FONT", "pdf_font_path"),
    )
