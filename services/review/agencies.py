"""The accepting agencies (受理机构) and the districts each serves, from an operator's TOML file.

Guide PART-8: "受理机构会在1-2个工作日内……审核". A submission goes to the labour and employment
office of the applicant's residence district; a district without an office of its own (a new
development zone, a code the file does not list yet) goes to the city-level default agency, so no
submission is ever left without a reviewer.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    districts: frozenset[str]


@dataclass(frozen=True)
class AgencyDirectory:
    agencies: tuple[Agency, ...]
    default_code: str

    def __post_init__(self) -> None:
        codes = [a.code for a in self.agencies]
        if len(set(codes)) != len(codes):
            raise ValueError("agency codes must be unique")
        if self.default_code not in codes:
            raise ValueError(f"default agency {self.default_code!r} is not listed")
        served = [d for a in self.agencies for d in a.districts]
        if len(set(served)) != len(served):
            raise ValueError("a district is served by two agencies")

    @classmethod
    def from_file(cls, path: Path) -> "AgencyDirectory":
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        agencies = tuple(
            Agency(code=str(a["code"]), name=str(a["name"]), districts=frozenset(map(str, a.get("districts", []))))
            for a in raw.get("agency", [])
        )
        return cls(agencies=agencies, default_code=str(raw["default"]))

    def get(self, code: str) -> Agency | None:
        return next((a for a in self.agencies if a.code == code), None)

    def for_district(self, district_code: str) -> Agency:
        for agency in self.agencies:
            if district_code in agency.districts:
                return agency
        default = self.get(self.default_code)
        assert default is not None  # checked in __post_init__
        return default
