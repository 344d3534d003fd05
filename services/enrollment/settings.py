"""enrollment's settings: the shared ones plus the eligibility, document and form knobs.

Each knob is a field `enrollment_<knob>`, read from ENROLLMENT_<KNOB> (docs/service-anatomy.md);
the districts come from the shared `districts_file` (DISTRICTS_FILE).
"""

from pathlib import Path
from typing import Literal

from pydantic import Field

from kernel.settings import ServiceSettings

PACKAGE_DIR = Path(__file__).resolve().parent

RetirementMode = Literal["guide", "gradual_2025"]


class EnrollmentSettings(ServiceSettings):
    service: str = "enrollment"
    # guide: the 2020 guide's 男未满60周岁、女未满55周岁; gradual_2025: the 2024 NPC Standing
    # Committee schedule by birth month (see services/enrollment/ages.py for the citation).
    enrollment_retirement_age_mode: RetirementMode = "guide"
    enrollment_minimum_age: int = Field(default=16, ge=0, le=30)
    enrollment_document_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    enrollment_blob_root: Path = Path(".run/blobs")
    enrollment_notice_file: Path = PACKAGE_DIR / "notice.toml"
    enrollment_agency_notice_file: Path = PACKAGE_DIR / "agency_notice.toml"
    # A CJK TrueType font for the registration form (Debian: fonts-wqy-microhei).
    enrollment_pdf_font: Path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
