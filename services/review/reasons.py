"""The reasons a reviewer may give for 审核不通过, from an operator's TOML file.

A closed list keeps decisions comparable across agencies and lets the SMS say something the
applicant can act on; `other` (or any code marked `text_required`) needs the reviewer's own words.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReasonCode:
    code: str
    label: str
    text_required: bool = False


@dataclass(frozen=True)
class ReasonCatalogue:
    codes: tuple[ReasonCode, ...]

    def __post_init__(self) -> None:
        names = [c.code for c in self.codes]
        if not names or len(set(names)) != len(names):
            raise ValueError("reason codes must be present and unique")

    @classmethod
    def from_file(cls, path: Path) -> "ReasonCatalogue":
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(
            tuple(
                ReasonCode(code=str(r["code"]), label=str(r["label"]), text_required=bool(r.get("text_required")))
                for r in raw.get("reason", [])
            )
        )

    def get(self, code: str) -> ReasonCode | None:
        return next((c for c in self.codes if c.code == code), None)
