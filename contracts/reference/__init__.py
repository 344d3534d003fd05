"""Reference data every service reads the same way: Changzhou's districts and their accepting agencies.

One file (`districts.toml` beside this module, or another given by the DISTRICTS_FILE setting),
so that where a person may live, who reviews them and which agency codes exist are decided once.
Agency codes travel in events (ReviewCaseOpened.agency_code), so they are part of the public
language, like the topics.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from contracts.events.base import CHANGZHOU_PREFIX

DEFAULT_DISTRICTS_FILE: Final = Path(__file__).resolve().parent / "districts.toml"


@dataclass(frozen=True)
class Agency:
    """An accepting agency (受理机构): a labour and employment office."""

    code: str
    name: str


@dataclass(frozen=True)
class District:
    """A county-level division of Changzhou (GB/T 2260 code and name) and the agency serving it."""

    code: str
    name: str
    agency_code: str


@dataclass(frozen=True)
class DistrictDirectory:
    agencies: tuple[Agency, ...]
    districts: tuple[District, ...]
    default_agency_code: str

    def __post_init__(self) -> None:
        agency_codes = [a.code for a in self.agencies]
        district_codes = [d.code for d in self.districts]
        if len(set(agency_codes)) != len(agency_codes) or len(set(district_codes)) != len(district_codes):
            raise ValueError("agency and district codes must be unique")
        if self.default_agency_code not in agency_codes:
            raise ValueError(f"default agency {self.default_agency_code!r} is not listed")
        for district in self.districts:
            if not district.code.startswith(CHANGZHOU_PREFIX):
                raise ValueError(f"district {district.code} is not in Changzhou ({CHANGZHOU_PREFIX}xx)")
            if district.agency_code not in agency_codes:
                raise ValueError(f"district {district.code}: agency {district.agency_code!r} is not listed")

    def __contains__(self, district_code: object) -> bool:
        return self.district(str(district_code)) is not None

    def district(self, code: str) -> District | None:
        return next((d for d in self.districts if d.code == code), None)

    def agency(self, code: str) -> Agency | None:
        return next((a for a in self.agencies if a.code == code), None)

    def agency_for(self, district_code: str) -> Agency:
        """The agency that reviews residents of `district_code`; the city's default for any other."""
        district = self.district(district_code)
        found = self.agency(district.agency_code if district else self.default_agency_code)
        assert found is not None  # checked in __post_init__
        return found


def load_districts(path: Path | None = None) -> DistrictDirectory:
    """Read the directory; a broken file raises (a service refuses to start rather than misroute)."""
    raw = tomllib.loads((path or DEFAULT_DISTRICTS_FILE).read_text(encoding="utf-8"))
    return DistrictDirectory(
        agencies=tuple(Agency(code=str(a["code"]), name=str(a["name"])) for a in raw.get("agency", [])),
        districts=tuple(
            District(code=str(d["code"]), name=str(d["name"]), agency_code=str(d["agency"]))
            for d in raw.get("district", [])
        ),
        default_agency_code=str(raw["default_agency"]),
    )
